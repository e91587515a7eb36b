// SPDX-License-Identifier: MIT
/*
 * Inputs: checking a file, cutting it into chunks of whole rows, and turning a
 * chunk's rows into records.
 *
 * A binary file is checked by its size. A CSV file is read once, in order, before
 * the join starts: that finds every bad key and broken quote before any output is
 * written, the longest row (which fixes the record width) and where rows start,
 * since a quoted field may hold a newline and a chunk must begin on a row.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define CSV_SEGMENT (64u << 10)		/* granule of CSV chunks */
#define CSV_MAX_ROW (256u << 20)	/* a longer row is refused */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Narrow [*p, *e) to the field's value: without blanks, then quotes, then blanks. */
static void unwrap(const char **p, const char **e)
{
	for (int pass = 0; pass < 2; pass++) {
		while (*p < *e && blank(**p))
			(*p)++;
		while (*e > *p && blank((*e)[-1]))
			(*e)--;
		if (pass || *e - *p < 2 || **p != '"' || (*e)[-1] != '"')
			break;
		(*p)++;
		(*e)--;
	}
}

int parse_key(const char *p, size_t len, int64_t *out)
{
	const char *e = p + len;
	uint64_t v = 0, lim = INT64_MAX;
	bool neg = false;

	unwrap(&p, &e);
	if (p < e && (*p == '-' || *p == '+')) {
		neg = *p == '-';
		lim += neg;
		p++;
	}
	if (p == e)
		return -EINVAL;
	for (; p < e; p++) {
		unsigned d = (unsigned char)*p - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (lim - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* One CSV row as the scanner found it. */
struct csv_row {
	const char *start, *end;	/* the row's text, without its line end */
	const char *key, *key_end;	/* the key field */
	const char *next, *next_end;	/* the field after it (NULL if none) */
	unsigned nfields;
	bool open_quote;		/* the row ended inside a quoted field */
};

/*
 * Scan the row at @p. Return where the next row starts, or NULL when the buffer
 * ends first and more may follow (@eof false). A quoted field may hold commas,
 * newlines and doubled quotes.
 */
static const char *csv_scan(const char *p, const char *end, bool eof, unsigned key_col,
			    struct csv_row *r)
{
	const char *field = p;
	bool quoted = false;

	r->start = p;
	r->key = r->next = NULL;
	r->nfields = 0;
	r->open_quote = false;
	for (;; p++) {
		if (p == end) {
			if (!eof)
				return NULL;
			r->open_quote = quoted;
		} else if (quoted) {
			if (*p == '"') {
				if (p + 1 == end && !eof)
					return NULL;	/* "" or " ends: look again */
				if (p + 1 < end && p[1] == '"')
					p++;
				else
					quoted = false;
			}
			continue;
		} else if (*p == '"') {
			quoted = true;
			continue;
		} else if (*p != ',' && *p != '\n') {
			continue;
		}
		/* A field ends at p. */
		const char *fe = p;

		if ((p == end || *p == '\n') && fe > field && fe[-1] == '\r')
			fe--;
		if (r->nfields == key_col) {
			r->key = field;
			r->key_end = fe;
		} else if (r->nfields == key_col + 1) {
			r->next = field;
			r->next_end = fe;
		}
		r->nfields++;
		field = p + 1;
		if (p == end || *p == '\n') {
			r->end = fe;
			return p == end ? p : p + 1;
		}
	}
}

/*
 * Commas that make a row of @r->nfields fields as wide as the first line, for
 * --ragged (its rest then has nfields - 1 fields, where an empty rest is one).
 */
static unsigned csv_pad(const struct side *s, const struct csv_row *r)
{
	if (!s->in->ragged || r->nfields >= s->nfields)
		return 0;
	return r->nfields >= 2 ? s->nfields - r->nfields : s->nfields - 2;
}

/* Bytes of the row's text without its key field and one comma beside it. */
static size_t csv_rest_len(const struct side *s, const struct csv_row *r)
{
	size_t row = r->end - r->start, key = r->key_end - r->key;

	return (row > key ? row - key - 1 : 0) + csv_pad(s, r);
}

/*
 * Copy that text to @out: the fields before the key, then those after it, then
 * the padding. @out may be where the row is (csv_ref_rest): it moves down.
 */
static size_t csv_rest_copy(const struct side *s, const struct csv_row *r, char *out)
{
	size_t before = r->key > r->start ? r->key - 1 - r->start : 0;
	size_t after = r->key_end < r->end ? r->end - r->key_end - 1 : 0;
	unsigned pad = csv_pad(s, r);
	size_t n = 0;

	memmove(out, r->start, before);
	n = before;
	if (before && after)
		out[n++] = ',';
	memmove(out + n, r->key_end + 1, after);
	n += after;
	memset(out + n, ',', pad);
	return n + pad;
}

/* The word a count sums: the field after the key as an integer, else 0. */
static uint64_t csv_word(const struct csv_row *r)
{
	int64_t v;

	if (!r->next || parse_key(r->next, r->next_end - r->next, &v))
		return 0;
	return (uint64_t)v;
}

static bool csv_blank_row(const struct csv_row *r)
{
	return r->end == r->start;
}

/* Whether a header field, without blanks and quotes, is @name. */
static bool header_is(const char *f, const char *fe, const char *name)
{
	size_t n = strlen(name);

	unwrap(&f, &fe);
	return (size_t)(fe - f) == n && !memcmp(f, name, n);
}

static char *strndup_or_empty(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

/* Find the key column in the header line @r (re-scanned per column by name). */
static int csv_header(struct side *s, const char *p, const char *end, char *err,
		      size_t errlen)
{
	const struct join_input *in = s->in;
	struct csv_row r;

	if (in->key_name) {
		unsigned col = 0;

		for (;; col++) {
			csv_scan(p, end, true, col, &r);
			if (!r.key)
				return fail(err, errlen, -EINVAL,
					    "%s: no column named '%s' in the header",
					    in->path, in->key_name);
			if (header_is(r.key, r.key_end, in->key_name))
				break;
		}
		s->key_col = col;
	} else {
		s->key_col = in->key_column ? in->key_column - 1 : 0;
		csv_scan(p, end, true, s->key_col, &r);
		if (!r.key)
			return fail(err, errlen, -EINVAL,
				    "%s: the header has %u columns, the key is column %u",
				    in->path, r.nfields, s->key_col + 1);
	}
	s->nfields = r.nfields;
	s->key_title = strndup_or_empty(r.key, r.key_end - r.key);
	s->rest_title = malloc(csv_rest_len(s, &r) + 1);
	if (!s->key_title || !s->rest_title)
		return -ENOMEM;
	s->rest_title[csv_rest_copy(s, &r, s->rest_title)] = 0;
	return 0;
}

/* --no-header: the columns of the first row @r are named 1..n. */
static int csv_numbered(struct side *s, const struct csv_row *r, char *err, size_t errlen)
{
	size_t len = 0, cap = (size_t)r->nfields * 11 + 1;
	char *rest = malloc(cap);

	s->key_col = s->in->key_column ? s->in->key_column - 1 : 0;
	if (s->key_col >= r->nfields) {
		free(rest);
		return fail(err, errlen, -EBADMSG, "%s: row 1 (line 1) has %u fields; the key"
			    " is field %u", s->in->path, r->nfields, s->key_col + 1);
	}
	s->nfields = r->nfields;
	s->key_title = malloc(12);
	if (!rest || !s->key_title) {
		free(rest);
		return -ENOMEM;
	}
	snprintf(s->key_title, 12, "%u", s->key_col + 1);
	rest[0] = 0;
	for (unsigned i = 0; i < r->nfields; i++)
		if (i != s->key_col)
			len += snprintf(rest + len, cap - len, "%s%u", len ? "," : "", i + 1);
	s->rest_title = rest;
	return 0;
}

/*
 * The text a record holds, chosen to waste least: a row that does not fit goes by
 * csv_ref, which costs a read of the file when it is written out. Counting a ref as
 * a page of bytes, choose the power of two that makes rows x room + refs x page the
 * smallest; @hist[b] counts rows whose rest is up to 2^b bytes.
 */
#define CSV_REF_COST 4096

static unsigned csv_rest_cap(const uint64_t *hist, size_t max_rest)
{
	uint64_t rows = 0, above = 0, best = UINT64_MAX;
	unsigned cap = sizeof(struct csv_ref), b;

	for (b = 0; b < 32; b++)
		rows += hist[b];
	for (b = 0; b < 32; b++) {
		size_t room = (size_t)1 << b;
		uint64_t cost;

		above = 0;
		for (unsigned h = b + 1; h < 32; h++)
			above += hist[h];
		if (room < sizeof(struct csv_ref))
			continue;
		cost = rows * (room + REC_KEY + 4) + above * CSV_REF_COST;
		if (cost < best) {
			best = cost;
			cap = (unsigned)room;
		}
		if (room >= max_rest)
			break;
	}
	return cap;
}

/* The histogram bucket of @len bytes: the least b with len <= 2^b. */
static unsigned len_bucket(size_t len)
{
	unsigned b = 0;

	while (b < 31 && ((size_t)1 << b) < len)
		b++;
	return b;
}

struct segs {
	struct chunk *v;
	size_t n, cap;
};

static int seg_push(struct segs *g, const struct chunk *c)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 256;
		struct chunk *v = realloc(g->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		g->v = v;
		g->cap = cap;
	}
	g->v[g->n++] = *c;
	return 0;
}

/* The file read through a growing buffer, keeping the row not yet complete. */
struct csv_buf {
	char *buf;
	size_t cap, have, at;		/* bytes held, and where the next row starts */
	uint64_t base;			/* the file offset of buf[0] */
	bool eof;
};

/*
 * Make room and read more, keeping the unfinished row at @b->at; the buffer grows
 * when that row fills it (@row and @line name it if it grows too long).
 * Return: 0, -ENOMEM, -EFBIG or -errno, with @err set.
 */
static int csv_refill(const struct side *s, struct csv_buf *b, uint64_t row, uint64_t line,
		      char *err, size_t errlen)
{
	ssize_t n;

	memmove(b->buf, b->buf + b->at, b->have - b->at);
	b->base += b->at;
	b->have -= b->at;
	b->at = 0;
	if (b->have == b->cap) {
		char *nb;

		if (b->cap >= CSV_MAX_ROW)
			return fail(err, errlen, -EFBIG, "%s: row %" PRIu64 " (line %" PRIu64
				    ") is longer than %u MiB", s->in->path, row + 1, line,
				    CSV_MAX_ROW >> 20);
		nb = realloc(b->buf, b->cap * 2);
		if (!nb)
			return -ENOMEM;
		b->buf = nb;
		b->cap *= 2;
	}
	n = read(s->fd, b->buf + b->have, b->cap - b->have);
	if (n < 0)
		return fail(err, errlen, -errno, "%s: %s", s->in->path, strerror(errno));
	b->eof = n == 0;
	b->have += n;
	return 0;
}

/* A row that must join: its key is there and parses, and its field count is right. */
static int csv_check_row(const struct side *s, const struct csv_row *r, uint64_t row,
			 uint64_t line, char *err, size_t errlen)
{
	int64_t k;
	int e, kl;

	if (!r->key)
		return fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " (line %" PRIu64
			    ") has %u fields; the key is field %u", s->in->path, row, line,
			    r->nfields, s->key_col + 1);
	if (r->nfields != s->nfields && !s->in->ragged)
		return fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " (line %" PRIu64
			    ") has %u fields, the %s %u (--ragged joins such rows)",
			    s->in->path, row, line, r->nfields,
			    s->in->no_header ? "first row" : "header", s->nfields);
	e = parse_key(r->key, r->key_end - r->key, &k);
	if (!e)
		return 0;
	kl = (int)(r->key_end - r->key);
	return fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " (line %" PRIu64
		    "): key '%.*s%s' %s", s->in->path, row, line, kl > 40 ? 40 : kl, r->key,
		    kl > 40 ? "..." : "",
		    e == -ERANGE ? "does not fit in 64 bits" : "is not an integer");
}

/* The header line: the columns' names. */
static int csv_first_line(struct side *s, const struct csv_row *r, char *err, size_t errlen)
{
	if (csv_blank_row(r))
		return fail(err, errlen, -EBADMSG, "%s: the first line is empty; a header"
			    " line is needed", s->in->path);
	return csv_header(s, r->start, r->end, err, errlen);
}

/* A row's lengths, for the records' room: the longest, and @hist of the rests. */
static void csv_note_row(struct side *s, const struct csv_row *r, uint64_t hist[32])
{
	size_t rest = csv_rest_len(s, r);

	if (rest > s->max_rest)
		s->max_rest = rest;
	if ((size_t)(r->end - r->start) > s->max_row)
		s->max_row = r->end - r->start;
	hist[len_bucket(rest)]++;
}

/* Read the whole CSV file once: header, keys, longest row, where segments start. */
static int csv_scan_file(struct side *s, struct segs *g, char *err, size_t errlen)
{
	struct csv_buf b = { .cap = 1u << 20 };
	uint64_t row = 0, line = 1, hist[32] = { 0 };
	struct chunk seg = { .first_row = 1 };
	bool header = !s->in->no_header, first = s->in->no_header;
	int ret = 0;

	b.buf = malloc(b.cap);
	if (!b.buf)
		return -ENOMEM;
	for (;;) {
		struct csv_row r;
		const char *next;

		next = csv_scan(b.buf + b.at, b.buf + b.have, b.eof, s->key_col, &r);
		if (!next) {
			if (b.eof)
				break;
			ret = csv_refill(s, &b, row, line, err, errlen);
			if (ret)
				goto out;
			continue;
		}
		if (next == b.buf + b.at && b.eof)
			break;
		uint64_t off = b.base + b.at, len = next - (b.buf + b.at);
		uint64_t lines = 1;

		for (const char *q = r.start; q < r.end; q++)
			lines += *q == '\n';
		b.at = next - b.buf;
		if (header) {
			header = false;
			ret = csv_first_line(s, &r, err, errlen);
			if (ret)
				goto out;
			seg.off = off + len;
			line += lines;
			continue;
		}
		if (r.open_quote) {
			ret = fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " (line %" PRIu64
				   "): a quoted field is not closed", s->in->path, row + 1, line);
			goto out;
		}
		if (first && !csv_blank_row(&r)) {
			/* --no-header: the first row names the columns 1..n. */
			first = false;
			ret = csv_numbered(s, &r, err, errlen);
			if (ret)
				goto out;
			csv_scan(r.start, r.end, true, s->key_col, &r);
		}
		if (!csv_blank_row(&r)) {
			ret = csv_check_row(s, &r, ++row, line, err, errlen);
			if (ret)
				goto out;
			csv_note_row(s, &r, hist);
			seg.rows++;
		}
		line += lines;
		seg.len = off + len - seg.off;
		if (seg.len >= CSV_SEGMENT) {
			ret = seg_push(g, &seg);
			if (ret)
				goto out;
			seg.off += seg.len;
			seg.first_row = row + 1;
			seg.len = seg.rows = 0;
		}
	}
	if (header) {
		ret = fail(err, errlen, -EBADMSG, "%s: empty file; a header line is needed",
			   s->in->path);
		goto out;
	}
	if (first) {
		ret = fail(err, errlen, -EBADMSG, "%s: no rows", s->in->path);
		goto out;
	}
	if (seg.len)
		ret = seg_push(g, &seg);
	s->rows = row;
	s->rest_cap = csv_rest_cap(hist, s->max_rest);
out:
	free(b.buf);
	return ret;
}

/* Merge segments into chunks of at most @chunk_bytes of text and of records. */
static int csv_chunks(struct side *s, struct segs *g, size_t chunk_bytes)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++) {
		struct chunk *c = &g->v[i], *last = n ? &g->v[n - 1] : NULL;

		if (!c->rows)
			continue;	/* only blank lines */
		if (last && last->len + c->len <= chunk_bytes &&
		    (last->rows + c->rows) * s->width <= chunk_bytes) {
			last->len = c->off + c->len - last->off;
			last->rows += c->rows;
		} else {
			g->v[n++] = *c;
		}
	}
	s->chunks = g->v;
	s->nchunks = n;
	g->v = NULL;
	return 0;
}

static int bin_chunks(struct side *s, size_t chunk_bytes)
{
	unsigned widest = s->width > s->row_bytes ? s->width : s->row_bytes;
	uint64_t per = chunk_bytes / widest ? chunk_bytes / widest : 1;
	size_t n = (s->rows + per - 1) / per;

	s->chunks = calloc(n ? n : 1, sizeof(*s->chunks));
	if (!s->chunks)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct chunk *c = &s->chunks[i];

		c->first_row = i * per + 1;
		c->rows = s->rows - i * per < per ? s->rows - i * per : per;
		c->off = i * per * s->row_bytes;
		c->len = c->rows * s->row_bytes;
	}
	s->nchunks = n;
	return 0;
}

int side_open(struct side *s, const struct join_input *in, const char *name,
	      enum join_format fmt, bool count_only, size_t chunk_bytes,
	      char *err, size_t errlen)
{
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->dfd = -1;
	s->in = in;
	s->name = name;
	/* O_NONBLOCK: a FIFO would block the open until a writer came. */
	s->fd = open(in->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (s->fd < 0)
		return fail(err, errlen, -errno, "%s input %s: %s", name, in->path,
			    strerror(errno));
	if (fstat(s->fd, &st)) {
		ret = fail(err, errlen, -errno, "%s: %s", in->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fail(err, errlen, -EINVAL, "%s input %s: not a regular file", name,
			   in->path);
		goto fail;
	}
	(void)fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
	s->size = st.st_size;
	if (fmt == JOIN_BIN) {
		s->row_bytes = in->row_bytes ? in->row_bytes : 16;
		s->key_offset = in->key_offset;
		if (s->size % s->row_bytes) {
			ret = fail(err, errlen, -EBADMSG, "%s: %" PRIu64 " bytes is not a whole"
				   " number of %u-byte rows: row %" PRIu64 " is cut short",
				   in->path, s->size, s->row_bytes,
				   s->size / s->row_bytes + 1);
			goto fail;
		}
		s->rows = s->size / s->row_bytes;
		s->width = count_only ? 16 : s->row_bytes;
		s->raw = s->key_offset == 0 && s->width == s->row_bytes;
		ret = bin_chunks(s, chunk_bytes);
	} else {
		struct segs g = { 0 };

		ret = csv_scan_file(s, &g, err, errlen);
		if (!ret) {
			s->width = count_only ? 16 : (REC_KEY + 4 + s->rest_cap + 7) & ~7u;
			ret = csv_chunks(s, &g, chunk_bytes);
		}
		free(g.v);
	}
	if (ret) {
		if (ret == -ENOMEM && !err[0])
			fail(err, errlen, ret, "%s: out of memory", in->path);
		goto fail;
	}
	/* Chunks are read in order; let the kernel read ahead generously. */
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
fail:
	side_close(s);
	return ret;
}

void side_close(struct side *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->dfd >= 0)
		close(s->dfd);
	s->fd = s->dfd = -1;
	free(s->chunks);
	free(s->key_title);
	free(s->rest_title);
	s->chunks = NULL;
	s->key_title = s->rest_title = NULL;
}

static int bin_records(const struct side *s, bool count_only, const struct chunk *c,
		       const char *buf, char *out)
{
	unsigned w = s->row_bytes, k = s->key_offset;
	/* The word after the key; bytes past the row's end count as 0. */
	unsigned have = w - k - 8 < 8 ? w - k - 8 : 8;

	for (uint64_t i = 0; i < c->rows; i++, buf += w, out += s->width) {
		memcpy(out, buf + k, 8);
		if (count_only) {
			uint64_t word = 0;

			memcpy(&word, buf + k + 8, have);
			memcpy(out + 8, &word, 8);
		} else {
			memcpy(out + 8, buf, k);
			memcpy(out + 8 + k, buf + k + 8, w - k - 8);
		}
	}
	return 0;
}

static int csv_records(const struct side *s, bool count_only, const struct chunk *c,
		       const char *buf, char *out, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + c->len;
	uint64_t row = c->first_row, done = 0;

	while (p < end && done < c->rows) {
		struct csv_row r;
		int64_t key;

		p = csv_scan(p, end, true, s->key_col, &r);
		if (csv_blank_row(&r))
			continue;
		/* The file was checked before; it changed if this fails. */
		if (!r.key || parse_key(r.key, r.key_end - r.key, &key) || r.open_quote ||
		    (!count_only && csv_rest_len(s, &r) > s->max_rest))
			return fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " changed while"
				    " the join ran", s->in->path, row);
		memcpy(out, &key, 8);
		if (count_only) {
			uint64_t w = csv_word(&r);

			memcpy(out + 8, &w, 8);
		} else if (csv_rest_len(s, &r) <= s->rest_cap) {
			uint32_t n = csv_rest_copy(s, &r, out + 12);

			memcpy(out + 8, &n, 4);
		} else {
			struct csv_ref ref = { c->off + (r.start - buf), r.end - r.start };
			uint32_t n = CSV_REF;

			memcpy(out + 8, &n, 4);
			memcpy(out + 12, &ref, sizeof(ref));
		}
		out += s->width;
		row++;
		done++;
	}
	if (done != c->rows)
		return fail(err, errlen, -EBADMSG, "%s: row %" PRIu64 " changed while the"
			    " join ran", s->in->path, row);
	return 0;
}

long csv_ref_rest(const struct side *s, const struct csv_ref *ref, char *out)
{
	struct csv_row r;
	size_t got = 0;

	if (ref->len > s->max_row)
		return -EBADMSG;
	while (got < ref->len) {
		ssize_t n = pread(s->fd, out + got, ref->len - got, ref->off + got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;
		got += n;
	}
	csv_scan(out, out + ref->len, true, s->key_col, &r);
	if (!r.key || r.open_quote)
		return -EBADMSG;
	return (long)csv_rest_copy(s, &r, out);
}

int side_records(const struct side *s, enum join_format fmt, bool count_only,
		 const struct chunk *c, const char *buf, char *out,
		 char *err, size_t errlen)
{
	if (fmt == JOIN_BIN)
		return bin_records(s, count_only, c, buf, out);
	return csv_records(s, count_only, c, buf, out, err, errlen);
}
