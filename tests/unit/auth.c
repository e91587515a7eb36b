// SPDX-License-Identifier: MIT
/* Unit tests of fabric/auth.c: the handshake's proof of the cluster token. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "auth.h"
#include "proto.h"

#define TOKEN "a token of some length, 0123456789"

struct side {
	struct weft__auth_key key;
	uint8_t nonce[WEFT_AUTH_NONCE];
	uint8_t role;
};

static void side_init(struct side *s, const char *token, uint8_t role)
{
	cr_assert_eq(weft__auth_key(token, &s->key), 0);
	weft__auth_nonce(s->nonce);
	s->role = role;
}

/* @a proves itself to @b: a's MAC, checked by b. */
static bool proves(const struct side *a, const struct side *b)
{
	uint8_t mac[WEFT_AUTH_MAC];

	weft__auth_mac(&a->key, a->role, a->nonce, b->nonce, WEFT_PROTO_MAJOR,
		       WEFT_PROTO_MINOR, mac);
	return weft__auth_check(&b->key, a->role, a->nonce, b->nonce, WEFT_PROTO_MAJOR,
				WEFT_PROTO_MINOR, mac);
}

Test(auth, both_sides_with_the_token_prove_it)
{
	struct side c, s;

	side_init(&c, TOKEN, WEFT_ROLE_CLIENT);
	side_init(&s, TOKEN, WEFT_ROLE_SCHEDULER);
	cr_assert(proves(&c, &s));
	cr_assert(proves(&s, &c));
}

Test(auth, another_token_fails)
{
	struct side c, s;

	side_init(&c, TOKEN "!", WEFT_ROLE_CLIENT);
	side_init(&s, TOKEN, WEFT_ROLE_SCHEDULER);
	cr_assert_not(proves(&c, &s));
	cr_assert_not(proves(&s, &c));
}

Test(auth, a_short_or_missing_token_is_refused)
{
	struct weft__auth_key k;

	cr_assert_eq(weft__auth_key("short", &k), -EINVAL);
	cr_assert_eq(weft__auth_key("", &k), -EINVAL);
	cr_assert_eq(weft__auth_key(NULL, &k), -EINVAL);
	cr_assert_eq(weft__auth_key("0123456789abcdef", &k), 0, "16 characters are enough");
}

Test(auth, a_mac_sent_back_or_replayed_fails)
{
	struct side c, s, later;
	uint8_t mac[WEFT_AUTH_MAC];

	side_init(&c, TOKEN, WEFT_ROLE_WORKER);
	side_init(&s, TOKEN, WEFT_ROLE_WORKER);
	/* s sends c's own MAC back as its proof (same role on both sides). */
	weft__auth_mac(&c.key, c.role, c.nonce, s.nonce, WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR,
		       mac);
	cr_assert_not(weft__auth_check(&c.key, s.role, s.nonce, c.nonce, WEFT_PROTO_MAJOR,
				       WEFT_PROTO_MINOR, mac), "reflected");
	/* c's MAC to s, recorded and replayed to a later connection (a fresh nonce). */
	cr_assert(weft__auth_check(&s.key, c.role, c.nonce, s.nonce, WEFT_PROTO_MAJOR,
				   WEFT_PROTO_MINOR, mac), "good where it was sent");
	side_init(&later, TOKEN, WEFT_ROLE_WORKER);
	cr_assert_not(weft__auth_check(&later.key, c.role, c.nonce, later.nonce,
				       WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR, mac), "replayed");
	/* A peer that echoes our nonce as its own. */
	weft__auth_mac(&s.key, s.role, c.nonce, c.nonce, WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR,
		       mac);
	cr_assert_not(weft__auth_check(&c.key, s.role, c.nonce, c.nonce, WEFT_PROTO_MAJOR,
				       WEFT_PROTO_MINOR, mac), "echoed nonce");
}

Test(auth, the_role_and_version_are_covered)
{
	struct side c, s;
	uint8_t mac[WEFT_AUTH_MAC];

	side_init(&c, TOKEN, WEFT_ROLE_CLIENT);
	side_init(&s, TOKEN, WEFT_ROLE_SCHEDULER);
	weft__auth_mac(&c.key, c.role, c.nonce, s.nonce, WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR,
		       mac);
	cr_assert_not(weft__auth_check(&s.key, WEFT_ROLE_WORKER, c.nonce, s.nonce,
				       WEFT_PROTO_MAJOR, WEFT_PROTO_MINOR, mac), "role");
	cr_assert_not(weft__auth_check(&s.key, c.role, c.nonce, s.nonce, WEFT_PROTO_MAJOR,
				       WEFT_PROTO_MINOR + 1, mac), "version");
	mac[0] ^= 1;
	cr_assert_not(weft__auth_check(&s.key, c.role, c.nonce, s.nonce, WEFT_PROTO_MAJOR,
				       WEFT_PROTO_MINOR, mac), "a flipped bit");
}

Test(auth, new_tokens_are_random_hex)
{
	char a[WEFT_TOKEN_NEW], b[WEFT_TOKEN_NEW];
	struct weft__auth_key k;

	cr_assert_eq(weft__auth_token_new(a, sizeof(a)), 0);
	cr_assert_eq(weft__auth_token_new(b, sizeof(b)), 0);
	cr_assert_eq(strlen(a), 64);
	cr_assert_eq(strspn(a, "0123456789abcdef"), 64);
	cr_assert_str_neq(a, b);
	cr_assert_eq(weft__auth_key(a, &k), 0);
	cr_assert_eq(weft__auth_token_new(a, 64), -EINVAL, "no room for the NUL");
}
