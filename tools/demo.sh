#!/bin/sh
# make demo: the main job. Generates two tables five times larger than the memory
# limit it sets, joins them with weft-join (a progress bar on a terminal), and
# checks the count against what weft-gen says the join must give; keeps the join's
# performance report in BUILD_DIR/demo-report.html.
# usage: tools/demo.sh BUILD_DIR
set -eu
b=$1
limit=${WEFT_DEMO_LIMIT:-64M}
left_rows=${WEFT_DEMO_LEFT:-4000000}
right_rows=${WEFT_DEMO_RIGHT:-16000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

echo "weft demo: an out-of-core hash join under a $limit memory limit"
echo "generating $left_rows left rows (unique keys) and $right_rows right rows" \
	"(keys drawn from the left's) in $dir"
"$b/tools/weft-gen" --pair --left "$dir/left.bin" --right "$dir/right.bin" \
	--left-rows "$left_rows" --rows "$right_rows" --seed 2026 > "$dir/expected.json"
echo "tables: $(du -h "$dir/left.bin" | cut -f1) + $(du -h "$dir/right.bin" | cut -f1)" \
	"on disk, $limit of memory"
"$b/tools/weft-join" --left "$dir/left.bin" --right "$dir/right.bin" --count \
	--memory-limit "$limit" --spill-dir "$dir" --report "$b/demo-report.html" \
	> "$dir/got.json"
echo "expected: $(cat "$dir/expected.json")"
echo "joined:   $(cat "$dir/got.json")"
if cmp -s "$dir/expected.json" "$dir/got.json"; then
	echo "weft demo: the join matches the generator's expectation"
	echo "its performance report (opens offline in a browser): $b/demo-report.html"
else
	echo "weft demo: MISMATCH between the join and the generator's expectation" >&2
	exit 1
fi
