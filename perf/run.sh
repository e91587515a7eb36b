#!/bin/sh
# make bench: every benchmark in perf/, then the oneTBB yardstick (perf/tbb.cpp, when
# g++ and libtbb-dev are installed), in one run, so that the figures can be read as
# ratios measured on the same machine.
# join writes ~6 GB of tables to $WEFT_BENCH_DIR (or $TMPDIR, or /tmp), and ~10 GB
# more as CSV for DuckDB, and takes a quarter of an hour.
# usage: perf/run.sh BUILD_DIR
set -e
b=$1
# The join's reference system, DuckDB, runs on Node.js (perf/duckdb.sh).
if [ -z "$WEFT_BENCH_DUCKDB" ] && command -v node >/dev/null && command -v npm >/dev/null; then
	WEFT_BENCH_DUCKDB="'$(pwd)/perf/duckdb.sh' '$(cd "$b" && pwd)'"
	export WEFT_BENCH_DUCKDB
fi
for p in fib flat chain fanout roundtrip spill join sched_sim report; do
	"$b/perf/$p"
	echo
done
# What recording tasks costs (weft_trace's events): the same, recording off.
for p in fib flat chain; do
	WEFT_RECORD=0 "$b/perf/$p"
	echo
done
# The cluster: two workers of one thread and the client share this machine.
for scheme in tcp shm; do
	"$b/tools/weft-cluster" -n 2 --nthreads 1 --provider "$scheme" \
		--load "$b/perf/libclustertasks.so" -- "$b/perf/cluster" "$scheme"
	echo
done
y=perf/tbb.cpp
if command -v g++ >/dev/null && [ -f /usr/include/oneapi/tbb.h ]; then
	echo "# yardstick: oneTBB task_group, same machine, same run ($y)"
	g++ -O2 -std=c++17 "$y" -o "$b/perf/tbb" -ltbb
	for t in 1 $(nproc); do
		out=$("$b/perf/tbb" "$t" "${WEFT_BENCH_REPS:-5}" 2>/dev/null)
		for k in $(printf '%s\n' "$out" | awk '$1 == "SAMPLE" { print $2 }' | sort -u); do
			vals=$(printf '%s\n' "$out" | awk -v k="$k" '$1 == "SAMPLE" && $2 == k { print $3 }' | sort -g)
			unit=$(printf '%s\n' "$out" | awk -v k="$k" '$1 == "SAMPLE" && $2 == k { print $4; exit }')
			med=$(printf '%s\n' "$vals" | awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
			printf 'tbb        %-22s %7d %12.2f %s\n' "$k" "$t" "$med" "$unit"
			printf '{"bench":"tbb","figure":"%s","threads":%d,"median":%.3f,"unit":"%s"}\n' "$k" "$t" "$med" "$unit"
		done
	done
else
	echo "# yardstick: skipped (needs g++ and libtbb-dev)"
fi
