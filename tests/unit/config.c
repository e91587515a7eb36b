// SPDX-License-Identifier: MIT
/* Unit tests of core/config.c: sizes with units and counts. */
#include <criterion/criterion.h>
#include <errno.h>

#include <stdlib.h>
#include <unistd.h>

#include "core.h"

Test(config, parse_size_units)
{
	size_t v;

	cr_assert_eq(weft__parse_size("1024", &v), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(weft__parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ull << 20);
	cr_assert_eq(weft__parse_size("4G", &v), 0);
	cr_assert_eq(v, 4ull << 30);
	cr_assert_eq(weft__parse_size("3k", &v), 0);
	cr_assert_eq(v, 3072);
	cr_assert_eq(weft__parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(weft__parse_size("1T", &v), 0);
	cr_assert_eq(v, 1ull << 40);
}

Test(config, parse_size_junk_returns_einval)
{
	size_t v = 7;

	cr_assert_eq(weft__parse_size("", &v), -EINVAL);
	cr_assert_eq(weft__parse_size("-1", &v), -EINVAL);
	cr_assert_eq(weft__parse_size("12Q", &v), -EINVAL);
	cr_assert_eq(weft__parse_size("G", &v), -EINVAL);
	cr_assert_eq(weft__parse_size("99999999999999999999", &v), -EINVAL);
	cr_assert_eq(weft__parse_size("99999999999T", &v), -EINVAL);
	cr_assert_eq(weft__parse_size(NULL, &v), -EINVAL);
	cr_assert_eq(v, 7, "out-parameter written on error");
}

Test(config, parse_uint_rejects_zero_and_junk)
{
	unsigned v = 9;

	cr_assert_eq(weft__parse_uint("4", &v), 0);
	cr_assert_eq(v, 4);
	cr_assert_eq(weft__parse_uint("0", &v), -EINVAL);
	cr_assert_eq(weft__parse_uint("4x", &v), -EINVAL);
	cr_assert_eq(weft__parse_uint(" 4", &v), -EINVAL);
	cr_assert_eq(weft__parse_uint("99999999999", &v), -EINVAL);
	cr_assert_eq(v, 4);
}

Test(config, parse_fraction_accepts_zero_to_one)
{
	double v = 7;

	cr_assert_eq(weft__parse_fraction("0.6", &v), 0);
	cr_assert_float_eq(v, 0.6, 1e-12);
	cr_assert_eq(weft__parse_fraction("1", &v), 0);
	cr_assert_eq(weft__parse_fraction("0", &v), -EINVAL);
	cr_assert_eq(weft__parse_fraction("1.01", &v), -EINVAL);
	cr_assert_eq(weft__parse_fraction("nan", &v), -EINVAL);
	cr_assert_eq(weft__parse_fraction("", &v), -EINVAL);
	cr_assert_float_eq(v, 1.0, 1e-12);
}

Test(config, memory_available_is_at_most_physical)
{
	size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);

	cr_assert_gt(weft__memory_available(), 0);
	cr_assert_leq(weft__memory_available(), phys);
}

Test(config, spill_dir_check_errors)
{
	cr_assert_eq(weft__spill_dir_check("/tmp"), 0);
	cr_assert_eq(weft__spill_dir_check("/nonexistent"), -ENOENT);
	cr_assert_eq(weft__spill_dir_check("/etc/hostname"), -ENOTDIR);
}

/* The thresholds an engine opened with @o (and the environment) ended up with. */
static void thresholds_of(const struct weft_options *o, double *t, double *p, double *h)
{
	struct weft_client *c;
	struct weft__engine *eng;

	cr_assert_eq(weft_client_open(NULL, o, &c), 0);
	eng = weft__client_engine(c);
	*t = eng->cfg.mem_target;
	*p = eng->cfg.mem_pause;
	*h = eng->cfg.mem_hard;
	cr_assert_eq(weft_client_close(c), 0);
}

Test(config, an_option_moves_an_environment_threshold_out_of_its_way)
{
	struct weft_options o = { .size = sizeof(o), .memory_target = 0.6 };
	double t, p, h;

	setenv("WEFT_MEMORY_PAUSE", "0.5", 1);
	thresholds_of(&o, &t, &p, &h);
	cr_expect_float_eq(t, 0.6, 1e-9);
	cr_expect_float_eq(p, 0.6, 1e-9, "the pause is raised to the program's target");
	cr_expect_float_eq(h, WEFT_DEFAULT_HARD, 1e-9);
	/* An environment hard limit below the program's pause is raised to it. */
	setenv("WEFT_MEMORY_HARD", "0.55", 1);
	o.memory_target = 0;
	o.memory_pause = 0.7;
	thresholds_of(&o, &t, &p, &h);
	cr_expect_float_eq(p, 0.7, 1e-9);
	cr_expect_float_eq(h, 0.7, 1e-9, "the hard limit is raised to the program's pause");
	cr_expect_float_eq(t, WEFT_DEFAULT_TARGET, 1e-9);
}

Test(config, defaults_make_way_for_what_was_set)
{
	struct weft_options o = { .size = sizeof(o), .memory_pause = 0.3 };
	double t, p, h;

	/* A pause below the default target takes the target down with it. */
	thresholds_of(&o, &t, &p, &h);
	cr_expect_float_eq(t, 0.3, 1e-9);
	cr_expect_float_eq(p, 0.3, 1e-9);
	cr_expect_float_eq(h, WEFT_DEFAULT_HARD, 1e-9);
	/* A target from the environment above the default pause takes the pause up. */
	setenv("WEFT_MEMORY_TARGET", "0.9", 1);
	thresholds_of(NULL, &t, &p, &h);
	cr_expect_float_eq(t, 0.9, 1e-9);
	cr_expect_float_eq(p, 0.9, 1e-9);
	cr_expect_float_eq(h, WEFT_DEFAULT_HARD, 1e-9);
}
