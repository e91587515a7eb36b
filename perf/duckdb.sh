#!/bin/sh
# duckdb.sh - runs perf/duckdb_join.mjs, the DuckDB reference of the join benchmark,
# after installing DuckDB's Node.js package (from the npm registry, a pinned
# version) into BUILD_DIR/duckdb the first time. perf/join calls it through
# $WEFT_BENCH_DUCKDB, which perf/run.sh sets when node and npm are installed.
# usage: perf/duckdb.sh BUILD_DIR LEFT.csv RIGHT.csv TEMP_DIR REPS
#        perf/duckdb.sh BUILD_DIR      (install only: prints READY)
# prints duckdb_join.mjs's lines, or one line "SKIP why" when it cannot run it
set -e
b=$1
shift
version=1.5.6-r.1
dir=$b/duckdb
# Without the registry there is no reference to measure: say so, and let the
# benchmark go on without it.
if [ ! -f "$dir/node_modules/@duckdb/node-api/package.json" ]; then
	mkdir -p "$dir"
	if ! npm install --silent --no-audit --no-fund --prefix "$dir" \
		"@duckdb/node-api@$version" >&2; then
		echo "SKIP npm could not install @duckdb/node-api@$version"
		exit 0
	fi
fi
if [ $# -eq 0 ]; then
	echo READY
	exit 0
fi
# Node resolves the import from the script's own directory upwards: run a copy
# that sits beside node_modules.
cp "$(dirname "$0")/duckdb_join.mjs" "$dir/"
exec node "$dir/duckdb_join.mjs" "$@"
