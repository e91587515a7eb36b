// SPDX-License-Identifier: MIT
/* io.c - writing and reading batches of items. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

/* ---- I/O ---- */

/* Zeros to pad written items to ITEM_ALIGN, so that a batch is one contiguous run. */
static const char zeros[ITEM_ALIGN];

/*
 * Requests for @items at their offsets: neighbours in the file share a request, up
 * to IOV_MAX iovecs. When @pad, each item is followed by its padding, so a batch
 * laid out end to end becomes one request. @iov has room for 2n entries, @ios and
 * @first for n requests; request r serves items first[r] .. first[r + 1] - 1.
 */
static unsigned fuse(struct weft__spill_item *items, unsigned n, bool pad,
		     struct iovec *iov, struct spill_io *ios, unsigned *first)
{
	unsigned nios = 0, niov = 0;

	for (unsigned i = 0; i < n; i++) {
		struct spill_io *io = nios ? &ios[nios - 1] : NULL;
		size_t len = items[i].len, gap = pad ? span(len) - len : 0;
		int need = gap ? 2 : 1;

		if (!io || io->off + io->len != items[i].off || io->iovcnt + need > IOV_MAX) {
			first[nios] = i;
			ios[nios++] = (struct spill_io){ .iov = &iov[niov], .off = items[i].off };
			io = &ios[nios - 1];
		}
		iov[niov++] = (struct iovec){ items[i].data, len };
		if (gap)
			iov[niov++] = (struct iovec){ (void *)zeros, gap };
		io->iovcnt += need;
		io->len += len + gap;
	}
	first[nios] = n;
	return nios;
}

/* Carry out @items; each item gets its request's error. Return: the first error. */
static int run(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
	       bool write, unsigned *nrequests)
{
	struct iovec *iov = malloc(2 * (size_t)n * sizeof(*iov));
	struct spill_io *ios = malloc(n * sizeof(*ios));
	unsigned *first = malloc((n + 1) * sizeof(*first));
	unsigned nios, r, i;
	int ret = 0;

	if (!iov || !ios || !first) {
		ret = -ENOMEM;
		goto out_free;
	}
	nios = fuse(items, n, write, iov, ios, first);
	/*
	 * Writes go through the backend, from one thread at a time. Reads come from
	 * any thread (a task restoring its input), so they use preadv, which shares
	 * no ring.
	 */
	if (write)
		weft__spill_seg_submit(s, s->ops, s->ctx, true, ios, nios);
	else
		weft__spill_seg_submit(s, &spill_pread_ops, NULL, false, ios, nios);
	for (r = 0; r < nios; r++) {
		for (i = first[r]; i < first[r + 1]; i++)
			items[i].err = ios[r].err;
		if (ios[r].err && !ret)
			ret = ios[r].err;
	}
	*nrequests = nios;
out_free:
	free(first);
	free(ios);
	free(iov);
	return ret;
}

/* Adds @c bytes at @p, offset @from in @it, to its checksum; the last sets it. */
static void sum_piece(struct weft__spill_item *it, XXH3_state_t *st, const void *p,
		      uint64_t from, size_t c)
{
	if (!from && c == it->len) {
		it->sum = XXH3_64bits(p, c);
		return;
	}
	if (!from)
		XXH3_64bits_reset(st);
	XXH3_64bits_update(st, p, c);
	if (from + c == it->len)
		it->sum = XXH3_64bits_digest(st);
}

/*
 * Direct mode: the batch [base, base + len) - items at their offsets, zeros between
 * - copied through the stage and written half a stage at a time. While one half
 * goes out the next is filled, and each item's checksum is taken from the bytes
 * just copied: the disk never waits for the copy. One request at a time is under
 * way, as start()/finish() allow.
 */
static int write_staged(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
			uint64_t base, uint64_t len, unsigned *nreq)
{
	const size_t half = s->stage_bytes / 2;
	XXH3_state_t *st = XXH3_createState();	/* an item that spans halves */
	struct iovec iov[2];
	struct spill_io io[2];
	bool busy[2] = { false, false };
	uint64_t pos = 0;
	unsigned k = 0, h = 0, i;
	int err = st ? 0 : -ENOMEM;

	while (pos < len && !err) {
		unsigned char *stage = (unsigned char *)s->stage + h * half;
		size_t chunk = len - pos < half ? (size_t)(len - pos) : half, fill = 0;

		while (fill < chunk) {
			uint64_t at = pos + fill, start, c;

			if (k < n && at >= items[k].off - base + items[k].len) {
				k++;
				continue;
			}
			start = k < n ? items[k].off - base : len;
			if (at < start) {	/* padding */
				c = start - at < chunk - fill ? start - at : chunk - fill;
				memset(stage + fill, 0, c);
			} else {
				c = items[k].len - (at - start);
				if (c > chunk - fill)
					c = chunk - fill;
				memcpy(stage + fill, (char *)items[k].data + (at - start), c);
				sum_piece(&items[k], st, stage + fill, at - start, c);
			}
			fill += c;
		}
		if (busy[h ^ 1]) {
			s->ops->finish(s->ctx, true, &io[h ^ 1]);
			busy[h ^ 1] = false;
			err = io[h ^ 1].err;
			if (err)
				break;
		}
		iov[h] = (struct iovec){ stage, chunk };
		io[h] = (struct spill_io){ .iov = &iov[h], .iovcnt = 1, .off = base + pos,
					   .len = chunk };
		if (weft__spill_seg_place(s, &io[h])) {
			s->ops->start(s->ctx, true, &io[h]);
			busy[h] = true;
		} else {
			/* Across a segment's end: in two, the plain way. */
			weft__spill_seg_submit(s, s->ops, s->ctx, true, &io[h], 1);
			err = io[h].err;
		}
		(*nreq)++;
		pos += chunk;
		h ^= 1;
	}
	for (i = 0; i < 2; i++) {
		if (!busy[i])
			continue;
		s->ops->finish(s->ctx, true, &io[i]);
		if (!err)
			err = io[i].err;
	}
	XXH3_freeState(st);
	for (i = 0; i < n; i++)
		items[i].err = err;
	return err;
}

/*
 * Direct mode: one item, a piece of its enclosing blocks at a time through the
 * bounce buffer, whose huge pages make each read fast. Readers take turns there:
 * they would share the disk anyway.
 */
static int read_bounced(struct weft__spill *s, struct weft__spill_item *it)
{
	uint64_t a0 = it->off & ~(uint64_t)(BLOCK - 1), a1 = round_up(it->off + it->len, BLOCK);
	int err = 0;

	pthread_mutex_lock(&s->bounce_lock);
	for (uint64_t pos = a0; pos < a1 && !err;) {
		size_t c = a1 - pos < BOUNCE ? (size_t)(a1 - pos) : BOUNCE;
		struct iovec iov = { s->bounce, c };
		struct spill_io io = { .iov = &iov, .iovcnt = 1, .off = pos, .len = c };
		uint64_t lo, hi;

		weft__spill_seg_submit(s, &spill_pread_ops, NULL, false, &io, 1);
		err = io.err;
		lo = pos > it->off ? pos : it->off;
		hi = pos + c < it->off + it->len ? pos + c : it->off + it->len;
		if (!err && hi > lo)
			memcpy((char *)it->data + (lo - it->off), (char *)s->bounce + (lo - pos),
			       hi - lo);
		pos += c;
	}
	pthread_mutex_unlock(&s->bounce_lock);
	return err;
}

int weft__spill_write(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total = 0, base;
	unsigned i, nreq = 0;
	int ret;

	if (!s || (!items && n))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!items[i].data || !items[i].len)
			return -EINVAL;
		total += span(items[i].len);
	}
	/*
	 * One range for the whole batch, so that it goes out as one request (or a
	 * stage at a time); direct I/O wants it in whole aligned blocks.
	 */
	uint64_t alloc_len = s->direct ? round_up(total, BLOCK) : total, start;

	pthread_mutex_lock(&s->lock);
	start = base = weft__spill_space_alloc(s, alloc_len, s->direct ? BLOCK : ITEM_ALIGN);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++) {
		items[i].off = base;
		base += span(items[i].len);
		items[i].err = 0;
	}
	/*
	 * Direct I/O goes through the stage even when the items could be written in
	 * place: their small pages make slow requests (see util/huge.h), and copying
	 * costs less than that.
	 */
	ret = weft__spill_seg_make(s, start, alloc_len);
	if (ret) {
		;	/* no file to write to: nothing is kept, as below */
	} else if (s->direct) {
		ret = write_staged(s, items, n, start, alloc_len, &nreq);
	} else {
		for (i = 0; i < n; i++)
			items[i].sum = XXH3_64bits(items[i].data, items[i].len);
		ret = run(s, items, n, true, &nreq);
	}
	for (i = 0; i < n; i++)
		items[i].err = ret;
	pthread_mutex_lock(&s->lock);
	/* The rounding after the last item belongs to no item: free it now. */
	weft__spill_space_free(s, start + total, alloc_len - total);
	if (ret) {
		/* Nothing is kept: the caller still has every item in memory. */
		for (i = 0; i < n; i++)
			weft__spill_space_free(s, items[i].off, span(items[i].len));
	} else {
		s->st.bytes_written += total;
		s->st.items_written += n;
		s->st.live_bytes += total;
		s->st.writes += nreq;
		s->st.ns_writing += now_ns() - t0;
		s->wrote_ns = now_ns();
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Reads: every item must lie in the file. Return: 0 with *total set, or -EINVAL. */
static int read_check(struct weft__spill *s, const struct weft__spill_item *items,
		      unsigned n, uint64_t *total)
{
	if (!s || (!items && n))
		return -EINVAL;
	*total = 0;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < n; i++) {
		if (!items[i].data || !items[i].len || items[i].off + items[i].len > s->end) {
			pthread_mutex_unlock(&s->lock);
			return -EINVAL;
		}
		*total += items[i].len;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Reads: check what arrived against its checksum, and count it. Return: the first error. */
static int read_finish(struct weft__spill *s, struct weft__spill_item *items, unsigned n,
		       uint64_t t0, uint64_t total, unsigned nreq)
{
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		/* Wrong bytes are an error on that item, never a result. */
		if (!items[i].err &&
		    XXH3_64bits(items[i].data, items[i].len) != items[i].sum)
			items[i].err = -EBADMSG;
		if (items[i].err && !ret)
			ret = items[i].err;
	}
	pthread_mutex_lock(&s->lock);
	s->st.bytes_read += total;
	s->st.items_read += n;
	s->st.reads += nreq;
	s->st.ns_reading += now_ns() - t0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int weft__spill_read(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total;
	unsigned i, nreq = 0;
	int ret = read_check(s, items, n, &total);

	if (ret)
		return ret;
	if (s->direct) {
		/* Through the bounce buffer, even when in place would do: as writes. */
		for (i = 0; i < n; i++)
			items[i].err = read_bounced(s, &items[i]);
		nreq = n;
	} else {
		run(s, items, n, false, &nreq);
	}
	return read_finish(s, items, n, t0, total, nreq);
}

/*
 * The enclosing blocks of items[from..) that fit in the stage together, as requests
 * into it (*at: where each item's blocks start there, SIZE_MAX if it is not in
 * this group). Direct mode only. Return: the item after the group.
 */
static unsigned stage_group(const struct weft__spill *s, const struct weft__spill_item *items,
			    unsigned from, unsigned n, size_t *at, struct iovec *iov,
			    struct spill_io *ios, unsigned *of, unsigned *nios)
{
	size_t used = 0;
	unsigned i;

	*nios = 0;
	for (i = from; i < n; i++) {
		uint64_t off = items[i].off & ~(uint64_t)(BLOCK - 1);
		size_t len = round_up(items[i].off + items[i].len, BLOCK) - off;

		at[i] = SIZE_MAX;
		if (len > s->stage_bytes)
			continue;	/* larger than the stage: read alone */
		if (used + len > s->stage_bytes)
			break;
		at[i] = used;
		iov[*nios] = (struct iovec){ (char *)s->stage + used, len };
		ios[*nios] = (struct spill_io){ .iov = &iov[*nios], .iovcnt = 1, .off = off,
						.len = len };
		of[(*nios)++] = i;
		used += len;
	}
	return i;
}

int weft__spill_read_ahead(struct weft__spill *s, struct weft__spill_item *items, unsigned n)
{
	uint64_t t0 = now_ns(), total;
	unsigned nios = 0, nreq = 0, i;
	struct iovec *iov;
	struct spill_io *ios;
	unsigned *of;		/* the item of each request */
	size_t *at;		/* where a staged item's blocks are in the stage */
	int ret = read_check(s, items, n, &total);

	if (ret)
		return ret;
	iov = malloc(n * sizeof(*iov));
	ios = malloc(n * sizeof(*ios));
	of = malloc(n * sizeof(*of));
	at = malloc(n * sizeof(*at));
	if (!iov || !ios || !of || !at) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < n; i++)
		items[i].err = 1;	/* not read yet */
	if (!s->direct) {
		/* Buffered: straight into the items' memory, all at once. */
		for (i = 0; i < n; i++) {
			iov[i] = (struct iovec){ items[i].data, items[i].len };
			ios[i] = (struct spill_io){ .iov = &iov[i], .iovcnt = 1,
						    .off = items[i].off, .len = items[i].len };
		}
		weft__spill_seg_submit(s, s->ops, s->ctx, false, ios, n);
		for (i = 0; i < n; i++)
			items[i].err = ios[i].err;
		nreq = n;
	}
	/*
	 * Direct: through the stage, a stageful at a time, even when an item could
	 * take the bytes itself. The stage's huge pages make the requests fast; the
	 * copy out costs far less than reading into small pages.
	 */
	for (unsigned from = 0; s->direct && from < n;) {
		unsigned next = stage_group(s, items, from, n, at, iov, ios, of, &nios);

		weft__spill_seg_submit(s, s->ops, s->ctx, false, ios, nios);
		nreq += nios;
		for (unsigned r = 0; r < nios; r++) {
			struct weft__spill_item *it = &items[of[r]];

			it->err = ios[r].err;
			if (!it->err)
				memcpy(it->data, (char *)s->stage + at[of[r]] +
				       (it->off & (BLOCK - 1)), it->len);
		}
		from = next;
	}
	for (i = 0; i < n; i++) {
		if (items[i].err != 1)
			continue;
		nreq++;
		items[i].err = read_bounced(s, &items[i]);
	}
out_free:
	if (ret)
		for (i = 0; i < n; i++)
			items[i].err = ret;
	free(at);
	free(of);
	free(ios);
	free(iov);
	return ret ? ret : read_finish(s, items, n, t0, total, nreq);
}

void weft__spill_release(struct weft__spill *s, uint64_t off, size_t len)
{
	pthread_mutex_lock(&s->lock);
	weft__spill_space_free(s, off, span(len));
	s->st.live_bytes -= span(len);
	if (!s->no_trim && s->nrel == s->rel_cap) {
		size_t cap = s->rel_cap ? 2 * s->rel_cap : 256;
		struct range *r = realloc(s->rel, cap * sizeof(*r));

		if (r) {
			s->rel = r;
			s->rel_cap = cap;
		}
	}
	if (!s->no_trim && s->nrel < s->rel_cap) {	/* else freed at close */
		s->rel[s->nrel++] = (struct range){ off, span(len) };
		s->released += span(len);
	}
	pthread_mutex_unlock(&s->lock);
}
