/* SPDX-License-Identifier: MIT */
/*
 * shm.h - the shared memory regions a process's shm endpoints leave in /dev/shm
 * (named weft-PID-...), removed after the process: weft-cluster and the cluster
 * tests do it for the processes they started. Header only.
 */
#ifndef WEFT_UTIL_SHM_H
#define WEFT_UTIL_SHM_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static inline void weft__shm_remove(pid_t pid)
{
	char prefix[32], path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir("/dev/shm");

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), "weft-%d-", (int)pid);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
			unlink(path);
		}
	closedir(d);
}

#endif /* WEFT_UTIL_SHM_H */
