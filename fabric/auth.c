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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

_Static_assert(crypto_auth_BYTES == WEFT_AUTH_MAC, "a MAC fills AUTH's field");
_Static_assert(crypto_auth_KEYBYTES == sizeof(((struct weft__auth_key *)0)->k), "key size");

#define CONTEXT "weft-auth-1"		/* keys and MACs of this protocol only */

int weft__auth_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int weft__auth_key(const char *token, struct weft__auth_key *key)
{
	size_t len = token ? strlen(token) : 0;

	if (len < WEFT_TOKEN_MIN)
		return -EINVAL;
	if (weft__auth_init())
		return -EIO;
	/* Keyed by the context, so the same token gives other keys elsewhere. */
	crypto_generichash(key->k, sizeof(key->k), (const unsigned char *)token, len,
			   (const unsigned char *)CONTEXT, sizeof(CONTEXT) - 1);
	return 0;
}

void weft__auth_random(void *out, size_t len)
{
	randombytes_buf(out, len);
}

void weft__auth_nonce(uint8_t nonce[WEFT_AUTH_NONCE])
{
	randombytes_buf(nonce, WEFT_AUTH_NONCE);
}

int weft__auth_token_new(char *out, size_t cap)
{
	uint8_t raw[32];

	if (cap < sizeof(raw) * 2 + 1 || weft__auth_init())
		return -EINVAL;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, cap, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
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
	crypto_auth(mac, in, sizeof(in), key->k);
}

bool weft__auth_check(const struct weft__auth_key *key, uint8_t role,
		      const uint8_t theirs[WEFT_AUTH_NONCE], const uint8_t mine[WEFT_AUTH_NONCE],
		      uint8_t major, uint8_t minor, const uint8_t mac[WEFT_AUTH_MAC])
{
	uint8_t in[2 + 2 * WEFT_AUTH_NONCE + 2];

	/* A peer must not echo our own nonce to make its MAC ours. */
	if (!sodium_memcmp(theirs, mine, WEFT_AUTH_NONCE))
		return false;
	mac_input(in, role, theirs, mine, major, minor);
	return crypto_auth_verify(mac, in, sizeof(in), key->k) == 0;	/* constant time */
}

void weft__auth_forget(struct weft__auth_key *key)
{
	sodium_memzero(key, sizeof(*key));
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
