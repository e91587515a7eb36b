/* SPDX-License-Identifier: MIT */
/*
 * auth.h - the cluster token and the handshake's proof of it (auth.c). A token is
 * text of at least WEFT_TOKEN_MIN characters, given by a file, $WEFT_TOKEN, or made
 * by weft-cluster; every process of a cluster must have the same one.
 */
#ifndef WEFT_FABRIC_AUTH_H
#define WEFT_FABRIC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_AUTH_NONCE 32
#define WEFT_AUTH_MAC 32
#define WEFT_TOKEN_MIN 16		/* characters of a token at least */
#define WEFT_TOKEN_NEW 65		/* bytes weft__auth_token_new writes, with the NUL */

struct weft__auth_key {
	uint8_t k[32];
};

/* Once per process, before anything else here. 0 or -EIO. */
int weft__auth_init(void);
/* The key of @token. 0, or -EINVAL for a token shorter than WEFT_TOKEN_MIN. */
int weft__auth_key(const char *token, struct weft__auth_key *key);
/* A fresh random token (64 hex characters) into @out of @cap >= WEFT_TOKEN_NEW bytes. */
int weft__auth_token_new(char *out, size_t cap);
void weft__auth_nonce(uint8_t nonce[WEFT_AUTH_NONCE]);
/* @len random bytes, unguessable (keys, conns). */
void weft__auth_random(void *out, size_t len);
/* The MAC this side (of @role) sends, over its nonce @mine and the peer's @theirs. */
void weft__auth_mac(const struct weft__auth_key *key, uint8_t role,
		    const uint8_t mine[WEFT_AUTH_NONCE], const uint8_t theirs[WEFT_AUTH_NONCE],
		    uint8_t major, uint8_t minor, uint8_t mac[WEFT_AUTH_MAC]);
/* Whether the peer (of @role) proved the token with @mac. Constant time. */
bool weft__auth_check(const struct weft__auth_key *key, uint8_t role,
		      const uint8_t theirs[WEFT_AUTH_NONCE], const uint8_t mine[WEFT_AUTH_NONCE],
		      uint8_t major, uint8_t minor, const uint8_t mac[WEFT_AUTH_MAC]);
void weft__auth_forget(struct weft__auth_key *key);
/*
 * The cluster token: the first line of @file when given, else $WEFT_TOKEN, into
 * @out. Return: 0, -ENOENT when neither is there, -EINVAL for a token shorter than
 * WEFT_TOKEN_MIN, or the file's errno.
 */
int weft__token_load(const char *file, char *out, size_t cap);
#define WEFT_TOKEN_MAX 1024		/* bytes of a token, with the NUL */

#endif /* WEFT_FABRIC_AUTH_H */
