// SPDX-License-Identifier: MIT
/*
 * A cluster started by mpirun (Debian's Open MPI): `mpirun -n 3 weft-worker
 * --scheduler-file F`: rank 0 runs the scheduler and writes F, ranks 1 and 2 are
 * the workers w0 and w1; a client reads F and runs a graph on them. Skipped where
 * mpirun is not installed (make deps installs openmpi-bin).
 */
#include <time.h>

#include "cluster.h"

static bool have_mpirun(void)
{
	return !system("command -v mpirun >/dev/null 2>&1");
}

Test(mpi, mpirun_starts_a_scheduler_and_workers_by_rank, .timeout = 120)
{
	char tmpl[PATH_MAX], file[PATH_MAX + 16], worker[PATH_MAX + 32], lib[PATH_MAX + 32];
	char url[256] = "";
	char dir[PATH_MAX];
	struct weft_client *c;
	struct weft_future *f[2];
	struct weft_task_opts on = { .size = sizeof(on) };
	uint64_t ms = 0;
	pid_t mpi;

	if (!have_mpirun())
		cr_skip_test("mpirun is not installed (openmpi-bin)");
	c_build_dir(dir, sizeof(dir));
	snprintf(worker, sizeof(worker), "%s/tools/weft-worker", dir);
	snprintf(lib, sizeof(lib), "%s/tests/cluster/libtasks.so", dir);
	cr_assert_not_null(mkdtemp(t_template(tmpl, sizeof(tmpl), "weft-mpi")));
	snprintf(file, sizeof(file), "%s/sched", tmpl);
	setenv("WEFT_TOKEN", TOKEN, 1);
	/* As root, Open MPI wants to be told that it is fine. */
	setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
	setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
	mpi = fork();
	cr_assert_geq(mpi, 0);
	if (!mpi) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		execlp("mpirun", "mpirun", "--oversubscribe", "-n", "3", "-x", "WEFT_TOKEN",
		       worker, "--scheduler-file", file, "--nthreads", "1", "--load", lib,
		       (char *)NULL);
		_exit(127);
	}
	/* The scheduler's address, once rank 0 wrote it. */
	for (int i = 0; i < 600 && !url[0]; i++) {
		FILE *fp = fopen(file, "re");

		if (fp) {
			if (!fgets(url, sizeof(url), fp))
				url[0] = '\0';
			fclose(fp);
		}
		usleep(100000);
	}
	cr_assert(url[0], "rank 0 wrote the scheduler file");
	url[strcspn(url, "\n")] = '\0';
	cr_assert_eq(weft_client_open(url, NULL, &c), 0);
	/* Workers w0 and w1, by their ranks: a task for each, waiting for it to join. */
	on.worker = "w0";
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on, &f[0]), 0);
	on.worker = "w1";
	cr_assert_eq(weft_submit_named(c, "nap", NULL, 0, &ms, 8, &on, &f[1]), 0);
	cr_assert_neq(u64_of(f[0]), u64_of(f[1]), "two worker processes");
	weft_release(f[0]);
	weft_release(f[1]);
	cr_assert_eq(weft_client_close(c), 0);
	kill(-mpi, SIGTERM);
	for (int i = 0; i < 500 && waitpid(mpi, NULL, WNOHANG) != mpi; i++)
		usleep(10000);
	kill(-mpi, SIGKILL);
	waitpid(mpi, NULL, 0);
	unlink(file);
	rmdir(tmpl);
}
