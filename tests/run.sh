#!/bin/sh
# Run the Criterion test programs of the given tiers and sum their results.
# usage: tests/run.sh BUILD_DIR TIER...   (WEFT_TEST_FILTER="tier/name ..." limits it)
# Prints each program's synthesis and one closing line: "check: N passed, N failed".
b=$1
shift
passed=0
failed=0
bad=""
for tier in "$@"; do
	for t in "$b"/tests/"$tier"/*; do
		[ -x "$t" ] || continue
		name="$tier/$(basename "$t")"
		if [ -n "$WEFT_TEST_FILTER" ]; then
			case " $WEFT_TEST_FILTER " in
			*" $name "*) ;;
			*) continue ;;
			esac
		fi
		out=$("$t" --jobs 2 2>&1 </dev/null)
		rc=$?
		syn=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -n 1)
		tested=$(printf '%s' "$syn" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
		passing=$(printf '%s' "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
		if [ -z "$tested" ] || [ "$rc" -ne 0 ]; then
			printf '%s\n' "$out"
			bad="$bad $name"
		fi
		printf '%-28s %s\n' "$name" "${syn:-no synthesis (exit $rc)}"
		passed=$((passed + ${passing:-0}))
		failed=$((failed + ${tested:-1} - ${passing:-0}))
	done
done
echo "check: $passed passed, $failed failed"
[ -z "$bad" ] || { echo "failing:$bad"; exit 1; }
[ "$passed" -gt 0 ] || { echo "no test ran"; exit 1; }
exit 0
