// SPDX-License-Identifier: MIT
/* out.c - text appended to a buffer of fixed room, for the pages view/ renders. */
#include <stdarg.h>
#include <stdio.h>

#include "view.h"

void weft__out_put(struct weft__out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = 1;
	else
		o->len += (size_t)n;
}

unsigned long long weft__field_of(const void *base, size_t off, size_t size)
{
	const char *p = (const char *)base + off;

	return size == 8 ? *(const uint64_t *)p : size == 4 ? *(const uint32_t *)p :
	       *(const uint16_t *)p;
}

void weft__out_json(struct weft__out *o, const char *s)
{
	weft__out_put(o, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			weft__out_put(o, "\\%c", ch);
		else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&')
			/* <, > and &: so that the text is safe inside a page's script */
			weft__out_put(o, "\\u%04x", ch);
		else
			weft__out_put(o, "%c", ch);
	}
	weft__out_put(o, "\"");
}

const char *weft__outcome_name(uint32_t outcome)
{
	return outcome == 1 ? "done" : outcome == 2 ? "failed" : "cancelled";
}
