// SPDX-License-Identifier: MIT
/*
 * weft-worker - a worker of a weft cluster: the embedded engine (pinned threads,
 * memory limit, spill) behind a fabric endpoint, running what its scheduler
 * sends, until the scheduler goes or SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "auth.h"
#include "core.h"
#include "worker.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
#define MAX_LOADS 64

static const char usage[] =
	"usage: weft-worker --scheduler ADDRESS [options]\n"
	"       weft-worker --scheduler-file FILE [options]\n"
	"\n"
	"Runs tasks for the scheduler at ADDRESS (default $WEFT_SCHEDULER).\n"
	"\n"
	"  --scheduler ADDRESS     the scheduler's address (tcp://HOST:PORT, shm://HOST:PORT)\n"
	"  --scheduler-file FILE   read it from FILE, waiting up to 60 s for it to appear;\n"
	"                          under srun or mpirun, rank 0 runs the scheduler instead\n"
	"                          and writes FILE, and rank R > 0 is the worker w(R-1)\n"
	"  --name NAME             this worker's name, unique in the cluster (default\n"
	"                          HOST-PID); tasks may ask for a worker by name\n"
	"  --nthreads N            threads running tasks (default: one per core)\n"
	"  --memory-limit SIZE     e.g. 4G (default: half of memory)\n"
	"  --spill-dir DIR         where results spill (default $WEFT_SPILL_DIR or $TMPDIR)\n"
	"  --load LIB.so           load a library whose WEFT_TASK functions become callable\n"
	"                          by name (repeatable)\n"
	"  --token-file FILE       the cluster token (default $WEFT_TOKEN)\n"
	"  --help                  this text\n"
	"  --version               the version of weft and of its protocol\n"
	"\n"
	"WEFT_LOG=error|warn|info|debug sets what is logged on standard error;\n"
	"WEFT_INLINE_MAX (bytes, default 8192) the results sent inside messages.\n"
	"Once it has joined, it prints \"joined NAME ADDRESS\" on standard output\n"
	"(ADDRESS: where the worker itself listens).\n"
	"\n"
	"Exit status: 0 when the scheduler stops or after SIGINT/SIGTERM, 1 when it cannot\n"
	"join (nothing at the address, a token refused, a name taken) or hears nothing\n"
	"from the scheduler for 10 s, 2 for bad usage. Once its scheduler is gone it\n"
	"leaves at once, without waiting for the tasks it runs.\n";

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "weft-worker: %s%s%s\nTry 'weft-worker --help'.\n", what,
		arg ? ": " : "", arg ? arg : "");
	return EXIT_USAGE;
}

/* The first line of @path, waiting for the file to appear. */
static int read_sched_file(const char *path, char *out, size_t cap)
{
	for (int i = 0; i < 600; i++) {
		FILE *f = fopen(path, "re");

		if (f) {
			char *ok = fgets(out, (int)cap, f);

			fclose(f);
			if (ok) {
				out[strcspn(out, "\r\n")] = '\0';
				return 0;
			}
		}
		usleep(100000);
	}
	return -ETIMEDOUT;
}

/* This process's rank when a launcher started it (srun, mpirun), or -1. */
static int launcher_rank(void)
{
	const char *vars[] = { "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK" };

	for (unsigned i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return atoi(v);
	}
	return -1;
}

/*
 * Rank 0 of a launcher with --scheduler-file: this process becomes the scheduler,
 * listening on this host's address and writing it to the file for the others.
 */
static int become_scheduler(const char *sched_file, const char *token_file)
{
	char prog[4096], host[256], listen[300];
	struct addrinfo hints = { .ai_family = AF_INET }, *ai;
	char addr[64] = "127.0.0.1";
	ssize_t n = readlink("/proc/self/exe", prog, sizeof(prog) - 32);
	const char *argv[8];
	unsigned a = 0;

	if (n <= 0)
		return EXIT_FAIL;
	prog[n] = '\0';
	strcpy(strrchr(prog, '/') + 1, "weft-scheduler");
	if (!gethostname(host, sizeof(host)) && !getaddrinfo(host, NULL, &hints, &ai)) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr,
			  sizeof(addr));
		freeaddrinfo(ai);
	}
	snprintf(listen, sizeof(listen), "tcp://%s:0", addr);
	argv[a++] = prog;
	argv[a++] = "--listen";
	argv[a++] = listen;
	argv[a++] = "--scheduler-file";
	argv[a++] = sched_file;
	if (token_file) {
		argv[a++] = "--token-file";
		argv[a++] = token_file;
	}
	argv[a] = NULL;
	execv(prog, (char *const *)argv);
	fprintf(stderr, "weft-worker: rank 0 cannot run %s: %s\n", prog, strerror(errno));
	return EXIT_FAIL;
}

static sigset_t sigs;

static void *signal_main(void *arg)
{
	int sig;

	sigwait(&sigs, &sig);
	weft__worker_stop(arg);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scheduler", 1, NULL, 'S' }, { "scheduler-file", 1, NULL, 'F' },
		{ "name", 1, NULL, 'n' }, { "nthreads", 1, NULL, 't' },
		{ "memory-limit", 1, NULL, 'm' }, { "spill-dir", 1, NULL, 'd' },
		{ "load", 1, NULL, 'L' }, { "token-file", 1, NULL, 'k' },
		{ "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	struct weft__worker_opts wo = { 0 };
	const char *loads[MAX_LOADS], *token_file = NULL, *sched_file = NULL;
	char token[WEFT_TOKEN_MAX], name[256], sched[512];
	struct weft__auth_key key;
	struct weft__wrt *w;
	unsigned nloads = 0;
	int rank;
	pthread_t sig_thread;
	int o, ret;

	/*
	 * A cluster's views are its scheduler's: the worker's engine serves none. Here,
	 * before any thread: the environment is not a thing to change under them.
	 */
	unsetenv("WEFT_DASHBOARD");

	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'S': wo.scheduler = optarg; break;
		case 'F': sched_file = optarg; break;
		case 'n': wo.name = optarg; break;
		case 't':
			if (weft__parse_uint(optarg, &wo.nthreads) || !wo.nthreads ||
			    wo.nthreads > 4096)
				return bad("bad --nthreads (1 to 4096)", optarg);
			break;
		case 'm':
			if (weft__parse_size(optarg, &wo.memory_limit) || !wo.memory_limit)
				return bad("bad --memory-limit (a size such as 4G)", optarg);
			break;
		case 'd': wo.spill_dir = optarg; break;
		case 'L':
			if (nloads == MAX_LOADS)
				return bad("too many --load", optarg);
			loads[nloads++] = optarg;
			break;
		case 'k': token_file = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': weft__print_version("weft-worker"); return 0;
		default: return bad("unknown or incomplete option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument", argv[optind]);
	rank = launcher_rank();
	if (sched_file && rank == 0)
		return become_scheduler(sched_file, token_file);
	if (sched_file) {
		if (read_sched_file(sched_file, sched, sizeof(sched))) {
			fprintf(stderr, "weft-worker: no scheduler address in %s\n", sched_file);
			return EXIT_FAIL;
		}
		wo.scheduler = sched;
	}
	if (!wo.scheduler)
		wo.scheduler = getenv("WEFT_SCHEDULER");
	if (!wo.scheduler || !*wo.scheduler)
		return bad("no scheduler: give --scheduler or set WEFT_SCHEDULER", NULL);
	ret = weft__token_load(token_file, token, sizeof(token));
	if (ret) {
		fprintf(stderr, "weft-worker: %s\n", ret == -ENOENT ?
			"no cluster token: give --token-file or set WEFT_TOKEN" :
			ret == -EINVAL ? "a token has at least 16 characters" : strerror(-ret));
		return ret == -ENOENT || ret == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	if (weft__auth_key(token, &key))
		return EXIT_FAIL;
	if (!wo.name && rank > 0) {
		snprintf(name, sizeof(name), "w%d", rank - 1);
		wo.name = name;
	}
	if (!wo.name) {
		char host[200];

		gethostname(host, sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(name, sizeof(name), "%s-%d", host, (int)getpid());
		wo.name = name;
	}
	for (unsigned i = 0; i < nloads; i++)
		if (!dlopen(loads[i], RTLD_NOW | RTLD_GLOBAL)) {
			fprintf(stderr, "weft-worker: --load %s: %s\n", loads[i], dlerror());
			return EXIT_FAIL;
		}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	wo.key = &key;
	ret = weft__worker_start(&wo, &w);
	if (ret) {
		fprintf(stderr, "weft-worker: cannot join the scheduler at %s: %s\n", wo.scheduler,
			ret == -EACCES ? "it refused this worker's token" :
			ret == -ETIMEDOUT ? "no answer" : weft_strerror(ret));
		return EXIT_FAIL;
	}
	/* Said when it has joined, for whoever started it (weft-cluster waits for it). */
	printf("joined %s %s\n", wo.name, weft__worker_url(w));
	fflush(stdout);
	if (!pthread_create(&sig_thread, NULL, signal_main, w))
		pthread_detach(sig_thread);	/* it ends with the process */
	ret = weft__worker_wait(w);
	weft__auth_forget(&key);
	if (ret) {
		/* Its tasks' results have nowhere to go: it does not wait for them. */
		fprintf(stderr, "weft-worker: the scheduler went away: %s\n", weft_strerror(ret));
		weft__worker_abandon(w);
		_exit(ret == -ECONNRESET ? 0 : EXIT_FAIL);
	}
	weft__worker_free(w);
	return 0;
}
