/* SPDX-License-Identifier: MIT */
/*
 * HTTP for the tests of the views: a free port to serve at, and a request sent
 * whole over a fresh connection with its answer read to the end.
 */
#ifndef WEFT_TEST_HTTP_H
#define WEFT_TEST_HTTP_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A port nobody listens on now. */
static inline unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static inline int dial(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

/* Send @req whole, read the answer to its end: its status; its body in *@body. */
static inline int http(unsigned port, const char *req, char **body)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *b;
	int fd = dial(port), status = 0;
	ssize_t n;

	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	sscanf(buf, "HTTP/1.%*d %d", &status);
	b = strstr(buf, "\r\n\r\n");
	if (body)
		*body = strdup(b ? b + 4 : "");
	free(buf);
	return status;
}

static inline int get(unsigned port, const char *path, char **body)
{
	char req[256];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close"
		 "\r\n\r\n", path);
	return http(port, req, body);
}

#endif
