/**
 * Turns bench rows into what the README shows: a markdown table between
 * markers, a JSON record under bench/results/, and an SVG plot under images/
 * (rendered with vega-lite, so figures are regenerated, never drawn by hand).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { BenchRow } from '../report-types.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

function formatValue(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function markdownTable(rows: BenchRow[]): string {
  const lines = ['| benchmark | variant | result | note |', '|---|---|---:|---|'];
  for (const r of rows) lines.push(`| ${r.group} | ${r.name} | ${formatValue(r.value)} ${r.unit} | ${r.note ?? ''} |`);
  return lines.join('\n');
}

/** Replace the text between `<!-- bench:ID:start -->` and `<!-- bench:ID:end -->` in README.md. */
export function updateReadme(id: string, body: string): boolean {
  const file = path.join(REPO_ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = `<!-- bench:${id}:start -->`;
  const end = `<!-- bench:${id}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return false;
  writeFileSync(file, `${text.slice(0, i + start.length)}\n${body}\n${text.slice(j)}`);
  return true;
}

export function saveResults(id: string, rows: BenchRow[]): string {
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${id}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: machineLine(), date: new Date().toISOString(), rows }, null, 2)}\n`);
  return file;
}

/** Horizontal bars, one panel per benchmark group with its own scale (groups have different units). */
export async function renderPlot(id: string, title: string, rows: BenchRow[]): Promise<string> {
  const data = rows.map((r) => ({ group: `${r.group} (${r.unit})`, name: r.name, value: r.value }));
  const spec = vl.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: title, subtitle: machineLine() },
    data: { values: data },
    facet: { row: { field: 'group', type: 'nominal', title: null, sort: null, header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top' } } },
    spec: {
      width: 420,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'name', type: 'nominal', title: null, sort: null },
        x: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'name', type: 'nominal', legend: null },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: { background: 'white' },
  } as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  const dir = path.join(REPO_ROOT, 'images');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${id}.svg`);
  writeFileSync(file, svg);
  return file;
}
