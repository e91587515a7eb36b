// SPDX-License-Identifier: MIT
/*
 * registry.c - task functions by name, process-wide. Registration is rare and
 * lookups happen once per named submit, so a locked open-addressing table is enough.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define NAME_MAX_LEN 255

struct entry {
	char *name;				/* NULL: empty slot */
	weft_fn *fn;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct entry *table;			/* cap slots, at most half full */
static size_t cap, used;

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* With the lock held. The slot holding @name, or the empty one where it would go. */
static struct entry *slot_of(const char *name)
{
	size_t i = hash_name(name) & (cap - 1);

	while (table[i].name && strcmp(table[i].name, name))
		i = (i + 1) & (cap - 1);
	return &table[i];
}

static int grow(void)
{
	struct entry *old = table;
	size_t oldcap = cap, i;

	table = calloc(cap ? 2 * cap : 64, sizeof(*table));
	if (!table) {
		table = old;
		return -ENOMEM;
	}
	cap = cap ? 2 * cap : 64;
	for (i = 0; i < oldcap; i++)
		if (old[i].name)
			*slot_of(old[i].name) = old[i];
	free(old);
	return 0;
}

int weft_register(const char *name, weft_fn *fn)
{
	struct entry *e;
	size_t len;
	int ret = 0;

	if (!name || !fn)
		return -EINVAL;
	len = strnlen(name, NAME_MAX_LEN + 1);
	if (!len || len > NAME_MAX_LEN)
		return -EINVAL;
	pthread_rwlock_wrlock(&lock);
	if (2 * (used + 1) > cap) {
		ret = grow();
		if (ret)
			goto out_unlock;
	}
	e = slot_of(name);
	if (e->name) {
		ret = -EEXIST;
		goto out_unlock;
	}
	e->name = strdup(name);
	if (!e->name) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	e->fn = fn;
	used++;
out_unlock:
	pthread_rwlock_unlock(&lock);
	return ret;
}

weft_fn *weft__registry_find(const char *name)
{
	weft_fn *fn = NULL;

	pthread_rwlock_rdlock(&lock);
	if (cap)
		fn = slot_of(name)->fn;
	pthread_rwlock_unlock(&lock);
	return fn;
}

/* The first name @fn was registered under, for labels; NULL if none. Slow path. */
const char *weft__registry_name(weft_fn *fn)
{
	const char *name = NULL;
	size_t i;

	pthread_rwlock_rdlock(&lock);
	for (i = 0; i < cap && !name; i++)
		if (table[i].name && table[i].fn == fn)
			name = table[i].name;
	pthread_rwlock_unlock(&lock);
	/* Entries are never removed, so the name outlives the lock. */
	return name;
}
