// SPDX-License-Identifier: MIT
/*
 * duckdb_join.mjs - the reference that weft-join's target is stated against:
 * DuckDB with threads=2 and a 1 GB memory limit, joining two tables of (key,
 * payload) on the key, timed for the join alone, after loading. The query gives
 * what weft-join --count gives (rows, and the wrapping 64-bit sums of each side's
 * payload), so the caller can check it against weft-gen's expectation.
 *
 * usage: node duckdb_join.mjs LEFT.csv RIGHT.csv TEMP_DIR REPS
 * prints: VERSION v, then one line per run: SAMPLE seconds rows left_sum right_sum
 */
import { DuckDBInstance } from '@duckdb/node-api';

const [left, right, temp, reps] = process.argv.slice(2);
if (!left || !right || !temp || !(Number(reps) > 0)) {
	console.error('usage: node duckdb_join.mjs LEFT.csv RIGHT.csv TEMP_DIR REPS');
	process.exit(2);
}
const db = await DuckDBInstance.create(':memory:', {
	threads: '2',
	memory_limit: '1GB',
	temp_directory: temp,
});
const c = await db.connect();
const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const load = (name, file) => c.run(`create table ${name} as select * from read_csv(` +
	`${quote(file)}, header = true, columns = {'key': 'BIGINT', 'payload': 'BIGINT'})`);
/* The sums wrap as weft-join's do: modulo 2^64, taken as unsigned. */
const wrap = (col) => `(((sum(${col}::HUGEINT) % 18446744073709551616) + ` +
	'18446744073709551616) % 18446744073709551616)::UBIGINT';

console.log('VERSION', (await c.runAndReadAll('select version()')).getRows()[0][0]);
await load('r', left);
await load('s', right);
for (let i = 0; i < Number(reps); i++) {
	const t0 = performance.now();
	const res = await c.runAndReadAll(`select count(*)::UBIGINT, ${wrap('r.payload')}, ` +
		`${wrap('s.payload')} from r join s on r.key = s.key`);
	const seconds = (performance.now() - t0) / 1000;
	const [rows, lsum, rsum] = res.getRows()[0];

	console.log('SAMPLE', seconds.toFixed(4), String(rows), String(lsum), String(rsum));
}
