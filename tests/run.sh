#!/bin/sh
# Run the Criterion test programs of the given tiers and sum their results.
# usage: tests/run.sh BUILD_DIR TIER...   (TIER@cluster runs TIER against a cluster;
# WEFT_TEST_FILTER="tier/name ..." limits it;
# WEFT_TEST_PROGRAM_TIMEOUT, seconds, default 600, bounds each program)
# Prints each program's synthesis and time, each skipped test with its reason, and
# one closing line: "check: N passed, N failed, N skipped". Criterion's synthesis
# leaves skipped tests out of its counts, so they are read from its TAP report.
#
# Under LeakSanitizer a leak in a test's process is printed but does not fail the
# test, and Criterion's runner leaks a little itself (and exits non-zero for it). So
# leaks are judged here: a report with a frame in weft's or the tests' code fails
# the program; one made only of Criterion's frames does not. Any report of a race,
# of undefined behaviour or of a memory error fails the program too.
b=$1
shift

# Every test's temporary files go under a directory of this run's, removed at the
# end whatever the tests left there: a test that fails or times out midway does not
# get to clean up (a small filesystem it mounted there is unmounted first).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weft-tests.XXXXXX") || exit 1
cleanup() {
	awk -v d="$scratch/" 'index($2, d) == 1 { print $2 }' /proc/mounts 2>/dev/null |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR="$scratch"
# Screenshots the page tests take are kept, in the build's directory.
export WEFT_TEST_ARTEFACTS="$b/artefacts"
mkdir -p "$WEFT_TEST_ARTEFACTS"
passed=0
failed=0
skipped=0
skips=""
# Criterion's own .timeout does not always fire (a test spinning with --jobs 2 was
# seen to run on for many minutes), so each program also gets a wall-clock limit.
limit=${WEFT_TEST_PROGRAM_TIMEOUT:-600}
bad=""

# Prints the number of leak reports whose stack has a frame of ours.
our_leaks() {
	awk '/ERROR: LeakSanitizer|^(Direct|Indirect) leak/ { inleak = 1; ours = 0; next }
	     inleak && /^ *#[0-9]+ .* in .*(util|core|alloc|spill|proto|fabric|sched|worker|client|join|tests|perf|tools)\// { ours = 1 }
	     inleak && /^$/ { n += ours; inleak = 0; ours = 0 }
	     END { print n + ours + 0 }'
}

for tier in "$@"; do
	# TIER@cluster: TIER's programs against a cluster of two workers (weft-cluster),
	# each worker loading the program's own tasks (lib<program>.so, the same source).
	dir=${tier%@cluster}
	for t in "$b"/tests/"$dir"/*; do
		[ -x "$t" ] || continue
		case "$t" in *.so) continue ;; esac	# a test's library, not a test
		name="$tier/$(basename "$t")"
		run=""
		if [ "$dir" != "$tier" ]; then
			run="$b/tools/weft-cluster -n 2 --nthreads 2 --dashboard none --load $(dirname "$t")/lib$(basename "$t").so --"
		fi
		if [ -n "$WEFT_TEST_FILTER" ]; then
			case " $WEFT_TEST_FILTER " in
			*" $name "*) ;;
			*) continue ;;
			esac
		fi
		# Programs whose every test is about an engine's own resources.
		case "$tier/$(basename "$t")" in
		integration@cluster/memory|integration@cluster/spill)
			skipped=$((skipped + 1))
			skips="$skips  $name (the whole program): embedded only: the engine's memory limits and spill file
"
			continue ;;
		esac
		t0=$(date +%s)
		tap="$scratch/.tap"
		rm -f "$tap"
		out=$(timeout -k 10 "$limit" $run "$t" --jobs 2 --tap="$tap" 2>&1 </dev/null)
		rc=$?
		# "ok - suite::name  # SKIP reason"
		skip=$(sed -n 's/^ok - \([^ ]*\) *# SKIP \(.*\)$/\1: \2/p' "$tap" 2>/dev/null)
		if [ -n "$skip" ]; then
			skipped=$((skipped + $(printf '%s\n' "$skip" | wc -l)))
			skips="$skips$(printf '%s\n' "$skip" | sed "s|^|  $name |")
"
		fi
		secs=$(($(date +%s) - t0))
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			out="$out
$name: still running after ${limit} s: killed (a test's own .timeout did not end it)"
		fi
		syn=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -n 1)
		tested=$(printf '%s' "$syn" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
		passing=$(printf '%s' "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
		leaks=$(printf '%s\n' "$out" | our_leaks)
		ok=1
		[ -n "$tested" ] && [ "$passing" = "$tested" ] || ok=0
		[ "$leaks" -eq 0 ] || ok=0
		# A race or undefined behaviour in a test's process does not fail the test.
		if printf '%s\n' "$out" | grep -qE 'WARNING: ThreadSanitizer|runtime error:|ERROR: AddressSanitizer'; then
			ok=0
		fi
		if [ "$rc" -ne 0 ] && ! printf '%s\n' "$out" | grep -q 'ERROR: LeakSanitizer'; then
			ok=0
		fi
		if [ "$ok" -eq 0 ]; then
			printf '%s\n' "$out"
			bad="$bad $name"
		fi
		[ "$leaks" -eq 0 ] || syn="$syn | leaks: $leaks"
		printf '%-28s %s (%d s)\n' "$name" "${syn:-no synthesis (exit $rc)}" "$secs"
		passed=$((passed + ${passing:-0}))
		failed=$((failed + ${tested:-1} - ${passing:-0}))
		[ "$ok" -eq 1 ] || [ "${tested:-1}" != "${passing:-0}" ] || failed=$((failed + 1))
	done
done
echo "check: $passed passed, $failed failed, $skipped skipped"
[ -z "$skips" ] || printf 'skipped:\n%s' "$skips"
[ -z "$bad" ] || { echo "failing:$bad"; exit 1; }
[ "$passed" -gt 0 ] || { echo "no test ran"; exit 1; }
exit 0
