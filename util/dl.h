/* SPDX-License-Identifier: MIT */
/*
 * dl.h - libraries loaded at their first use (dl.c): libfabric, libsodium and
 * libmicrohttpd, so that a program that never needs one never maps it, nor what it
 * pulls in. Each user keeps a table of the calls it makes through pointers.
 */
#ifndef WEFT_DL_H
#define WEFT_DL_H

#include <stddef.h>

/* A call to find: its symbol, and where its address goes. */
struct weft__dl_call {
	const char *name;
	void **fn;
};

/*
 * Open the first of @libs (sonames, NULL-terminated) that opens, and find each of
 * its @n @calls. Return: 0, or -ENODEV with a log line under @who naming the
 * library or the call that failed and @package, what to install.
 */
int weft__dl_load(const char *const *libs, const struct weft__dl_call *calls, size_t n,
		  const char *who, const char *package);

#endif /* WEFT_DL_H */
