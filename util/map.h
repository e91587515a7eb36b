/* SPDX-License-Identifier: MIT */
/*
 * map.h - a hash map from 64-bit keys to pointers (map.c): open addressing with
 * linear probing and deletion by backward shift (no tombstones), grown at 3/4 full.
 * Not thread-safe: each map has one owner. Key 0 is allowed; NULL values are not.
 */
#ifndef WEFT_MAP_H
#define WEFT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__map {
	uint64_t *keys;
	void **vals;			/* NULL: an empty slot */
	size_t cap;			/* a power of two, or 0 */
	size_t len;
	/*
	 * Keys from a counter (ids): their low bits are their slot, so that the ids of
	 * one burst sit side by side (a few cache lines, not one each). Set before the
	 * first put; any other keys (addresses) are hashed.
	 */
	bool ids;
};

/* The value of @key, or NULL. */
void *weft__map_get(const struct weft__map *m, uint64_t key);
/* Set @key to @val (not NULL), replacing any. 0 or -ENOMEM. */
int weft__map_put(struct weft__map *m, uint64_t key, void *val);
/* Remove @key; return what it held, or NULL. */
void *weft__map_del(struct weft__map *m, uint64_t key);
void weft__map_free(struct weft__map *m);
/*
 * Give back what a burst left: a map under 1/8 full moves to the smallest table
 * that holds it at most half full (none, when empty). Deletion never shrinks, so
 * that a loop may delete the entry it is on: call this where no loop walks @m.
 * It keeps the map as it is when memory is short.
 */
void weft__map_shrink(struct weft__map *m);

/* Every entry, in no order: for (size_t i = 0; weft__map_next(m, &i, &k, &v);) */
static inline int weft__map_next(const struct weft__map *m, size_t *i, uint64_t *key,
				 void **val)
{
	for (; *i < m->cap; ++*i) {
		if (m->vals[*i]) {
			*key = m->keys[*i];
			*val = m->vals[*i];
			++*i;
			return 1;
		}
	}
	return 0;
}

#endif /* WEFT_MAP_H */
