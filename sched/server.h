/* SPDX-License-Identifier: MIT */
/*
 * server.h - the scheduler on the fabric (server.c): what weft-scheduler runs, and
 * what tests start in their own process.
 */
#ifndef WEFT_SERVER_H
#define WEFT_SERVER_H

#include "auth.h"
#include "scheduler.h"

struct weft__server;

/*
 * Listen at @url and schedule for the peers that prove @key. Return: 0, or a
 * negative errno (a log line says why).
 */
int weft__server_start(const char *url, const struct weft__auth_key *key,
		       struct weft__server **out);
/*
 * Serve the cluster's figures over HTTP at @addr, HOST:PORT (view.h). Return: 0, or
 * a negative errno (a log line says why).
 */
int weft__server_serve(struct weft__server *srv, const char *addr);
/* The URL clients and workers connect to (its port resolved). */
const char *weft__server_url(const struct weft__server *srv);
/* Say BYE to every peer and stop. */
void weft__server_stop(struct weft__server *srv);

#endif /* WEFT_SERVER_H */
