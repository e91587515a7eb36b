/* SPDX-License-Identifier: MIT */
/*
 * log.h - log lines on stderr at the level $WEFT_LOG asks (error, warn, info,
 * debug), thread names and priorities: for every folder (log.c).
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdbool.h>

#include "compiler.h"

enum weft__log_level { WEFT_LOG_ERROR, WEFT_LOG_WARN, WEFT_LOG_INFO, WEFT_LOG_DEBUG };

void weft__log(enum weft__log_level lvl, const char *component, const char *fmt, ...)
	__printf(3, 4);
bool weft__log_enabled(enum weft__log_level lvl);
/* Names the calling thread for ps, top -H, perf and gdb (15 bytes kept). */
void weft__name_thread(const char *fmt, ...) __printf(1, 2);
/*
 * Runs the calling thread @levels nice values above where it runs now (to -20 at
 * most); 0 changes nothing. Threads created by it afterwards inherit the value.
 * Return: 0, or -EACCES/-EPERM when the process may not (no CAP_SYS_NICE).
 */
int weft__raise_priority(unsigned levels);

#endif /* WEFT_LOG_H */
