/* SPDX-License-Identifier: MIT */
/*
 * A real browser for the tests of the pages: Debian's chromium, headless, run on a
 * URL for a span of the page's own time (its timers run that long, however long
 * the page's requests take), to read the page as its scripts left it or to take a
 * screenshot, kept in $WEFT_TEST_ARTEFACTS (tests/run.sh: the build's artefacts/).
 */
#ifndef WEFT_TEST_BROWSER_H
#define WEFT_TEST_BROWSER_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmp.h"

#define BROWSER "/usr/bin/chromium"

static inline bool browser_here(void)
{
	return access(BROWSER, X_OK) == 0;
}

/*
 * chromium run headless on @url for @ms of the page's time, with @what: the
 * output it prints (the DOM for --dump-dom), malloc'd. A profile of its own each
 * time (two tests may run at once); no sandbox (root has none); LD_PRELOAD and the
 * sanitizers' options are not its.
 */
static inline char *browser_run(const char *url, unsigned ms, const char *what)
{
	char dir[4096], cmd[8192], *out = NULL;
	size_t cap = 0, len = 0, n;
	FILE *p;

	cr_assert_not_null(mkdtemp(t_template(dir, sizeof(dir), "chromium")));
	snprintf(cmd, sizeof(cmd), "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "
		 "-u TSAN_OPTIONS -u LSAN_OPTIONS " BROWSER " --headless --no-sandbox "
		 "--disable-gpu --no-first-run --user-data-dir='%s' --window-size=1400,1000 "
		 "--virtual-time-budget=%u %s '%s' 2>/dev/null </dev/null", dir, ms, what, url);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	do {
		if (len + 4096 > cap)
			cr_assert_not_null(out = realloc(out, cap = 2 * cap + 4096));
		n = fread(out + len, 1, cap - len - 1, p);
		len += n;
	} while (n);
	out[len] = 0;
	cr_assert_eq(pclose(p), 0, "chromium failed: %s", cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	return out;
}

/* The page at @url as its scripts left it after @ms of its time: malloc'd HTML. */
static inline char *browser_dom(const char *url, unsigned ms)
{
	return browser_run(url, ms, "--dump-dom");
}

/* A screenshot of @url after @ms, kept as @name in the artefacts' directory. */
static inline void browser_screenshot(const char *url, unsigned ms, const char *name)
{
	const char *dir = getenv("WEFT_TEST_ARTEFACTS");
	char what[4200], path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "build/artefacts", name);
	mkdir(dir && *dir ? dir : "build/artefacts", 0755);
	snprintf(what, sizeof(what), "--screenshot='%s'", path);
	free(browser_run(url, ms, what));
	cr_assert_eq(stat(path, &st), 0, "no screenshot at %s", path);
	cr_assert_gt(st.st_size, 10000, "a screenshot of %lld bytes: a blank page?",
		     (long long)st.st_size);
}

/* The number in the element of id @id of @dom ("<span ... id="@id">N<"). */
static inline double dom_number(const char *dom, const char *id)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "id=\"%s\">", id);
	p = strstr(dom, key);
	cr_assert_not_null(p, "no element %s in the page", id);
	return strtod(p + strlen(key), NULL);
}

#endif
