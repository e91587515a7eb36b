// SPDX-License-Identifier: MIT
/*
 * weft-scheduler - the scheduler of a weft cluster. Prints the address to connect
 * to on the first line of standard output (and into --scheduler-file), then
 * schedules for the clients and workers that prove the cluster token, until
 * SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "auth.h"
#include "core.h"
#include "log.h"
#include "server.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage[] =
	"usage: weft-scheduler [--listen URL] [--token-file FILE] [--scheduler-file FILE]\n"
	"                      [--dashboard HOST:PORT|none]\n"
	"\n"
	"Schedules tasks for the clients and workers of a weft cluster.\n"
	"\n"
	"  --listen URL            where to listen: tcp://HOST:PORT, or shm://HOST:PORT for\n"
	"                          processes of one machine (shared memory for the data);\n"
	"                          port 0 picks one (default tcp://127.0.0.1:0)\n"
	"  --token-file FILE       the cluster token: the file's first line (default\n"
	"                          $WEFT_TOKEN); every process of the cluster needs it.\n"
	"                          Without either, a fresh token is made and printed on the\n"
	"                          second line of standard output.\n"
	"  --scheduler-file FILE   also write the address into FILE (for workers started\n"
	"                          by srun or mpirun: weft-worker --scheduler-file FILE)\n"
	"  --dashboard HOST:PORT   serve the cluster's figures over HTTP there (/metrics in\n"
	"                          Prometheus' format, JSON under /api; default\n"
	"                          127.0.0.1:8787; none: do not). An address it cannot\n"
	"                          serve at is logged and the scheduler runs without.\n"
	"  --help                  this text\n"
	"  --version               the version of weft and of its protocol\n"
	"\n"
	"The first line of standard output is the address clients and workers connect to.\n"
	"WEFT_LOG=error|warn|info|debug sets what is logged on standard error.\n"
	"\n"
	"Exit status: 0 after SIGINT or SIGTERM, 1 when it cannot start (the address is\n"
	"taken, the provider is missing), 2 for bad usage.\n";

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "weft-scheduler: %s%s%s\nTry 'weft-scheduler --help'.\n", what,
		arg ? ": " : "", arg ? arg : "");
	return EXIT_USAGE;
}

/* Write @text to @path whole or not at all: a reader never sees half of it. */
static int write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fprintf(f, "%s\n", text) < 0 || fclose(f)) {
		unlink(tmp);
		return -EIO;
	}
	return rename(tmp, path) ? -errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", 1, NULL, 'l' }, { "token-file", 1, NULL, 't' },
		{ "scheduler-file", 1, NULL, 's' }, { "dashboard", 1, NULL, 'd' },
		{ "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	const char *listen = "tcp://127.0.0.1:0", *token_file = NULL, *sched_file = NULL;
	const char *dashboard = "127.0.0.1:8787";
	char token[WEFT_TOKEN_MAX];
	struct weft__auth_key key;
	struct weft__server *srv;
	bool fresh = false;
	sigset_t sigs;
	int o, sig, ret;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l': listen = optarg; break;
		case 't': token_file = optarg; break;
		case 's': sched_file = optarg; break;
		case 'd': dashboard = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': weft__print_version("weft-scheduler"); return 0;
		default: return bad("unknown or incomplete option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument", argv[optind]);
	ret = weft__token_load(token_file, token, sizeof(token));
	if (ret == -ENOENT) {
		if (weft__auth_token_new(token, sizeof(token)))
			return EXIT_FAIL;
		fresh = true;
	} else if (ret) {
		fprintf(stderr, "weft-scheduler: %s: %s\n", token_file ? token_file : "$WEFT_TOKEN",
			ret == -EINVAL ? "a token has at least 16 characters" : strerror(-ret));
		return token_file && ret != -EINVAL ? EXIT_FAIL : EXIT_USAGE;
	}
	if (weft__auth_key(token, &key))
		return EXIT_FAIL;
	/* The signals are taken by sigwait below, in every thread started after. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	ret = weft__server_start(listen, &key, &srv);
	if (ret) {
		fprintf(stderr, "weft-scheduler: cannot listen at %s: %s\n", listen,
			weft_strerror(ret));
		return EXIT_FAIL;
	}
	printf("%s\n", weft__server_url(srv));
	if (fresh)
		printf("%s\n", token);
	fflush(stdout);
	if (sched_file && (ret = write_file(sched_file, weft__server_url(srv)))) {
		fprintf(stderr, "weft-scheduler: writing %s: %s\n", sched_file, strerror(-ret));
		weft__server_stop(srv);
		return EXIT_FAIL;
	}
	weft__log(WEFT_LOG_INFO, "scheduler", "listening at %s", weft__server_url(srv));
	if (strcmp(dashboard, "none") && weft__server_serve(srv, dashboard))
		weft__log(WEFT_LOG_WARN, "scheduler", "--dashboard %s: the scheduler runs "
			  "without its views", dashboard);
	sigwait(&sigs, &sig);
	weft__log(WEFT_LOG_INFO, "scheduler", "%s: stopping", strsignal(sig));
	weft__server_stop(srv);
	if (sched_file)
		unlink(sched_file);
	weft__auth_forget(&key);
	return 0;
}
