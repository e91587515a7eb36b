#!/bin/sh
# SPDX-License-Identifier: MIT
# Build a libFuzzer target per decoder of proto/ (the message, and each op type)
# with clang, and run each for SECONDS on the committed seed corpus
# (tests/fuzz/corpus/TARGET; what a run finds goes to BUILD/fuzz/new/, never into
# the corpus). Exits 1 if any target crashes; its input is BUILD/fuzz/crash-*.
# usage: tests/fuzz/run.sh BUILD SECONDS
set -eu
B=$1/fuzz
S=$2
CC=${FUZZ_CC:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iproto -Iutil"
mkdir -p "$B/new"

if ! command -v "$CC" >/dev/null; then
	echo "fuzz: $CC not found (make deps installs clang)" >&2
	exit 1
fi
# The decoders once, then each target's harness against them.
$CC $FLAGS -fsanitize=fuzzer-no-link -c proto/wire.c -o "$B/wire.o"
$CC $FLAGS -fsanitize=fuzzer-no-link -c proto/ops.c -o "$B/ops.o"
$CC $FLAGS -fsanitize=fuzzer-no-link -c proto/parts.c -o "$B/parts.o"
printf '#include <stdio.h>\n#include "proto.h"\nint main(void) { printf("%%d\\n", WEFT_OP_TYPES - 1); return 0; }\n' \
	> "$B/nops.c"
$CC -Iproto "$B/nops.c" -o "$B/nops"
nops=$("$B/nops")

targets=msg
n=1
while [ "$n" -le "$nops" ]; do
	if [ ! -d "tests/fuzz/corpus/op$n" ]; then
		echo "fuzz: op $n has no seed corpus: run make fuzz-seeds" >&2
		exit 1
	fi
	targets="$targets op$n"
	n=$((n + 1))
done

failed=""
for t in $targets; do
	case $t in
	msg) def="" ;;
	*) def="-DFUZZ_OP=${t#op}" ;;
	esac
	$CC $FLAGS $def tests/fuzz/proto.c "$B/wire.o" "$B/ops.o" "$B/parts.o" -o "$B/$t"
	mkdir -p "$B/new/$t"
	if "$B/$t" -max_total_time="$S" -print_final_stats=0 -artifact_prefix="$B/crash-$t-" \
		"$B/new/$t" "tests/fuzz/corpus/$t" >"$B/$t.log" 2>&1; then
		runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$B/$t.log")
		echo "fuzz: $t: ${runs:-?} runs in ${S} s, nothing found"
	else
		echo "fuzz: $t: FAILED (see $B/$t.log and $B/crash-$t-*)"
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed"
	exit 1
fi
echo "fuzz: $(echo $targets | wc -w) targets passed"
