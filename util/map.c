// SPDX-License-Identifier: MIT
/* map.c - a hash map from 64-bit keys to pointers: see map.h. */
#include <errno.h>
#include <stdlib.h>

#include "map.h"

static inline size_t slot_of(const struct weft__map *m, uint64_t key, size_t cap)
{
	/*
	 * Ids: eight in a row share a line of keys; the groups are hashed, so that a
	 * run of slots stays short (a run a deletion shifts back is walked whole).
	 */
	if (m->ids)
		return (size_t)((((key >> 3) * 0x9e3779b97f4a7c15ull) >> 32) << 3 | (key & 7)) &
		       (cap - 1);
	/* A multiplicative hash: addresses share their low bits. */
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

void *weft__map_get(const struct weft__map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(m, key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->vals[i])
			return NULL;
		if (m->keys[i] == key)
			return m->vals[i];
	}
}

#define MIN_CAP 16

/* Move every entry into a table of @cap slots. 0 or -ENOMEM (@m unchanged). */
static int rehash(struct weft__map *m, size_t cap)
{
	uint64_t *keys = malloc(cap * sizeof(*keys));
	void **vals = calloc(cap, sizeof(*vals));
	struct weft__map old = *m;

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	*m = (struct weft__map){ keys, vals, cap, 0, old.ids };
	for (size_t i = 0; i < old.cap; i++)
		if (old.vals[i])
			weft__map_put(m, old.keys[i], old.vals[i]);
	free(old.keys);
	free(old.vals);
	return 0;
}

static int grow(struct weft__map *m)
{
	return rehash(m, m->cap ? m->cap * 2 : MIN_CAP);
}

void weft__map_shrink(struct weft__map *m)
{
	size_t cap = MIN_CAP;

	if (m->cap <= MIN_CAP || m->len * 8 >= m->cap)
		return;
	if (!m->len) {
		bool ids = m->ids;

		weft__map_free(m);	/* the next put starts again at MIN_CAP */
		m->ids = ids;
		return;
	}
	while (cap < m->len * 2)
		cap *= 2;
	rehash(m, cap);
}

int weft__map_put(struct weft__map *m, uint64_t key, void *val)
{
	size_t i;

	if ((m->len + 1) * 4 > m->cap * 3 && grow(m))
		return -ENOMEM;
	for (i = slot_of(m, key, m->cap); m->vals[i]; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->len++;
	return 0;
}

void *weft__map_del(struct weft__map *m, uint64_t key)
{
	size_t i, j, mask = m->cap - 1;
	void *val;

	if (!m->cap)
		return NULL;
	for (i = slot_of(m, key, m->cap); m->vals[i] && m->keys[i] != key; i = (i + 1) & mask)
		;
	if (!m->vals[i])
		return NULL;
	val = m->vals[i];
	/* Shift back the entries after it that would no longer be found. */
	for (j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
		size_t home = slot_of(m, m->keys[j], m->cap);

		/* j's entry may move to i if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->vals[i] = NULL;
	m->len--;
	return val;
}

void weft__map_free(struct weft__map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct weft__map){ 0 };
}
