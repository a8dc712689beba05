/**
 * `npm run bench`: the micro benchmarks (native routines, I/O queue, multipath layer) in one
 * run. Prints the table, saves bench/results/micro.json, rewrites the README
 * table between the bench:micro markers and renders images/micro-bench.svg.
 */
import { run as runIo } from './io.bench.js';
import { run as runMultipath } from './multipath.bench.js';
import { machineLine, markdownTable, renderPlot, saveResults, updateReadme } from './lib/report.js';
import { run as runNative } from './native.bench.js';
import type { BenchRow } from './report-types.js';

const rows: BenchRow[] = [...(await runNative()), ...(await runIo()), ...(await runMultipath())];
const table = markdownTable(rows);
console.log(table);
console.log(`\nmachine: ${machineLine()}`);
console.log(`results: ${saveResults('micro', rows)}`);
const readme = `${table}\n\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machineLine()}.`;
console.log(updateReadme('micro', readme) ? 'README.md table updated' : 'README.md has no bench:micro markers; not updated');
// Ratios are in the table; the plot shows the measured rates.
console.log(`plot: ${await renderPlot('micro-bench', 'lunrig micro benchmarks', rows.filter((r) => r.unit !== 'x'))}`);
