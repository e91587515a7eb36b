// SPDX-License-Identifier: MIT
/*
 * auth.c - the proof that a peer knows the cluster token (the only user of
 * libsodium). Each side of a new connection sends a fresh random nonce in its
 * HELLO, then in AUTH a MAC, keyed by the token, over its role, its own nonce, the
 * peer's nonce and the protocol version. Each checks the other's MAC in constant
 * time. A MAC is bound to both nonces and to the direction (the sender's nonce
 * comes first), so neither a recorded handshake nor the peer's own MAC sent back
 * passes. This authenticates; it does not encrypt.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "dl.h"
#include "log.h"

_Static_assert(crypto_auth_BYTES == WEFT_AUTH_MAC, "a MAC fills AUTH's field");
_Static_assert(crypto_auth_KEYBYTES == sizeof(((struct weft__auth_key *)0)->k), "key size");

#define CONTEXT "weft-auth-1"		/* keys and MACs of this protocol only */

/*
 * libsodium, loaded at the first use, as libfabric is (dl.c): a program of the
 * embedded engine never loads it. Its headers give the types; these the calls.
 */
static struct {
	int (*init)(void);
	int (*generichash)(unsigned char *out, size_t outlen, const unsigned char *in,
			   unsigned long long inlen, const unsigned char *key, size_t keylen);
	void (*random)(void *buf, size_t size);
	char *(*bin2hex)(char *hex, size_t hex_maxlen, const unsigned char *bin, size_t bin_len);
	void (*memzero)(void *pnt, size_t len);
	int (*memcmp)(const void *b1, const void *b2, size_t len);
	int (*auth)(unsigned char *out, const unsigned char *in, unsigned long long inlen,
		    const unsigned char *k);
	int (*auth_verify)(const unsigned char *h, const unsigned char *in,
			   unsigned long long inlen, const unsigned char *k);
} na;
static pthread_once_t na_once = PTHREAD_ONCE_INIT;
static int na_loaded = -EIO;

static void na_load(void)
{
	static const char *const libs[] = { "libsodium.so.23", "libsodium.so", NULL };
	const struct weft__dl_call calls[] = {
		{ "sodium_init", (void **)&na.init },
		{ "crypto_generichash", (void **)&na.generichash },
		{ "randombytes_buf", (void **)&na.random },
		{ "sodium_bin2hex", (void **)&na.bin2hex },
		{ "sodium_memzero", (void **)&na.memzero },
		{ "sodium_memcmp", (void **)&na.memcmp },
		{ "crypto_auth", (void **)&na.auth },
		{ "crypto_auth_verify", (void **)&na.auth_verify },
	};

	if (weft__dl_load(libs, calls, sizeof(calls) / sizeof(calls[0]), "auth",
			  "libsodium23"))
		return;
	if (na.init() < 0) {
		weft__log(WEFT_LOG_ERROR, "auth", "libsodium did not start (sodium_init)");
		return;
	}
	na_loaded = 0;
}

int weft__auth_init(void)
{
	pthread_once(&na_once, na_load);
	return na_loaded;
}

int weft__auth_key(const char *token, struct weft__auth_key *key)
{
	size_t len = token ? strlen(token) : 0;

	if (len < WEFT_TOKEN_MIN)
		return -EINVAL;
	if (weft__auth_init())
		return -EIO;
	/* Keyed by the context, so the same token gives other keys elsewhere. */
	na.generichash(key->k, sizeof(key->k), (const unsigned char *)token, len,
			   (const unsigned char *)CONTEXT, sizeof(CONTEXT) - 1);
	return 0;
}

void weft__auth_random(void *out, size_t len)
{
	if (weft__auth_init())
		abort();	/* nothing random to give: no key may be made */
	na.random(out, len);
}

void weft__auth_nonce(uint8_t nonce[WEFT_AUTH_NONCE])
{
	weft__auth_random(nonce, WEFT_AUTH_NONCE);
}

int weft__auth_token_new(char *out, size_t cap)
{
	uint8_t raw[32];

	if (cap < sizeof(raw) * 2 + 1 || weft__auth_init())
		return -EINVAL;
	na.random(raw, sizeof(raw));
	na.bin2hex(out, cap, raw, sizeof(raw));
	na.memzero(raw, sizeof(raw));
	return 0;
}

/* What a MAC covers: the sender's role, both nonces (the sender's first), the version. */
static void mac_input(uint8_t in[2 + 2 * WEFT_AUTH_NONCE + 2], uint8_t role,
		      const uint8_t sender[WEFT_AUTH_NONCE],
		      const uint8_t receiver[WEFT_AUTH_NONCE], uint8_t major, uint8_t minor)
{
	in[0] = 'A';
	in[1] = role;
	memcpy(in + 2, sender, WEFT_AUTH_NONCE);
	memcpy(in + 2 + WEFT_AUTH_NONCE, receiver, WEFT_AUTH_NONCE);
	in[2 + 2 * WEFT_AUTH_NONCE] = major;
	in[3 + 2 * WEFT_AUTH_NONCE] = minor;
}

void weft__auth_mac(const struct weft__auth_key *key, uint8_t role,
		    const uint8_t mine[WEFT_AUTH_NONCE], const uint8_t theirs[WEFT_AUTH_NONCE],
		    uint8_t major, uint8_t minor, uint8_t mac[WEFT_AUTH_MAC])
{
	uint8_t in[2 + 2 * WEFT_AUTH_NONCE + 2];

	mac_input(in, role, mine, theirs, major, minor);
	na.auth(mac, in, sizeof(in), key->k);
}

bool weft__auth_check(const struct weft__auth_key *key, uint8_t role,
		      const uint8_t theirs[WEFT_AUTH_NONCE], const uint8_t mine[WEFT_AUTH_NONCE],
		      uint8_t major, uint8_t minor, const uint8_t mac[WEFT_AUTH_MAC])
{
	uint8_t in[2 + 2 * WEFT_AUTH_NONCE + 2];

	/* A peer must not echo our own nonce to make its MAC ours. */
	if (!na.memcmp(theirs, mine, WEFT_AUTH_NONCE))
		return false;
	mac_input(in, role, theirs, mine, major, minor);
	return na.auth_verify(mac, in, sizeof(in), key->k) == 0;	/* constant time */
}

void weft__auth_forget(struct weft__auth_key *key)
{
	if (weft__auth_init()) {
		memset(key, 0, sizeof(*key));
		return;
	}
	na.memzero(key, sizeof(*key));
}

int weft__token_load(const char *file, char *out, size_t cap)
{
	const char *env = getenv("WEFT_TOKEN");
	size_t n;

	if (file) {
		FILE *f = fopen(file, "re");

		if (!f)
			return -errno;
		if (!fgets(out, (int)cap, f)) {
			fclose(f);
			return -EINVAL;
		}
		fclose(f);
	} else if (env && *env) {
		if (strlen(env) >= cap)
			return -EINVAL;
		strcpy(out, env);
	} else {
		return -ENOENT;
	}
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	return n >= WEFT_TOKEN_MIN ? 0 : -EINVAL;
}
