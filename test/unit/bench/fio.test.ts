/**
 * The pure parts of the NBD benchmark (bench/lib/fio.ts): fio's command line,
 * reading fio 3.33's JSON, refusing runs that did not happen, and the medians
 * and ratios of the report. Nothing here starts fio or a server.
 */
import { describe, expect, it } from 'vitest';
import {
  FioError,
  WORKLOADS,
  extractJson,
  fioArgs,
  formatRatio,
  median,
  nbdUnixUri,
  parseFioJson,
  ratio,
  spread,
  summarize,
  type FioResult,
  type MeasuredRun,
} from '../../../bench/lib/fio.js';

const PERCENTILES = {
  '1.000000': 201728,
  '5.000000': 261120,
  '10.000000': 342016,
  '50.000000': 872448,
  '90.000000': 2801664,
  '95.000000': 4046848,
  '99.000000': 8355840,
  '99.500000': 10158080,
  '99.900000': 37486592,
};

const idle = { io_bytes: 0, io_kbytes: 0, bw_bytes: 0, bw: 0, iops: 0, runtime: 0, total_ios: 0, short_ios: 0, drop_ios: 0, clat_ns: { min: 0, max: 0, mean: 0, stddev: 0, N: 0 } };

/** The shape of a real `fio --output-format=json` run of the nbd engine (fio 3.33), trimmed. */
function fioJson(over: { error?: number; read?: object; write?: object } = {}): object {
  return {
    'fio version': 'fio-3.33',
    jobs: [
      {
        jobname: 'randread-4k-nbdkit',
        groupid: 0,
        error: over.error ?? 0,
        elapsed: 3,
        'job options': { name: 'randread-4k-nbdkit', ioengine: 'nbd', rw: 'randread', bs: '4096', iodepth: '32' },
        read: over.read ?? {
          io_bytes: 187695104,
          io_kbytes: 183296,
          bw_bytes: 93800651,
          bw: 91602,
          iops: 22900.549725,
          runtime: 2001,
          total_ios: 45824,
          short_ios: 0,
          drop_ios: 0,
          slat_ns: { min: 0, max: 0, mean: 0, stddev: 0, N: 0 },
          clat_ns: { min: 142685, max: 50415482, mean: 1377999.160789, stddev: 2236918.156, N: 45824, percentile: PERCENTILES },
          lat_ns: { min: 143000, max: 50416000, mean: 1378500, stddev: 2236900, N: 45824 },
        },
        write: over.write ?? idle,
        trim: idle,
        job_runtime: 2000,
        usr_cpu: 7.55,
        sys_cpu: 22.2,
      },
    ],
  };
}

describe('fio command line', () => {
  it('builds the nbd engine invocation of the issue, one job, JSON to a file', () => {
    const w = WORKLOADS.find((x) => x.id === 'randread-4k')!;
    const args = fioArgs(w, { uri: 'nbd+unix:///bench?socket=/tmp/s.sock', runtime: 10, output: '/tmp/out.json' });
    expect(args).toEqual([
      '--name=randread-4k',
      '--ioengine=nbd',
      '--uri=nbd+unix:///bench?socket=/tmp/s.sock',
      '--rw=randread',
      '--bs=4096',
      '--iodepth=32',
      '--numjobs=1',
      '--time_based',
      '--runtime=10',
      '--output-format=json',
      '--output=/tmp/out.json',
    ]);
    expect(fioArgs(w, { uri: 'u', runtime: 5, ramp: 2, output: 'o' })).toContain('--ramp_time=2');
  });

  it('has the four workloads: 4k random at QD32, 1M sequential at QD8', () => {
    expect(WORKLOADS.map((w) => [w.rw, w.bs, w.iodepth])).toEqual([
      ['randread', 4096, 32],
      ['randwrite', 4096, 32],
      ['read', 1 << 20, 8],
      ['write', 1 << 20, 8],
    ]);
  });

  it('writes unix-socket NBD URIs with the export name as the path', () => {
    expect(nbdUnixUri('bench', '/tmp/x/s.sock')).toBe('nbd+unix:///bench?socket=/tmp/x/s.sock');
    expect(nbdUnixUri('', '/s')).toBe('nbd+unix:///?socket=/s');
    expect(nbdUnixUri('a b', '/s')).toBe('nbd+unix:///a%20b?socket=/s');
  });
});

describe('fio JSON', () => {
  it('reads IOPS, bandwidth and the p50/p99 completion latency of the run direction', () => {
    const r = parseFioJson(fioJson(), 'randread');
    expect(r).toMatchObject<Partial<FioResult>>({
      rw: 'randread',
      iops: 22900.549725,
      bwBytes: 93800651,
      ioBytes: 187695104,
      totalIos: 45824,
      clatP50Ns: 872448,
      clatP99Ns: 8355840,
      runtimeMs: 2001,
      usrCpu: 7.55,
      sysCpu: 22.2,
    });
  });

  it('reads the write section for write workloads', () => {
    const write = { ...(fioJson() as { jobs: Array<{ read: object }> }).jobs[0]!.read, iops: 1000 };
    const r = parseFioJson(fioJson({ read: idle, write }), 'write');
    expect(r.iops).toBe(1000);
    expect(r.clatP99Ns).toBe(8355840);
  });

  it('skips engine messages fio writes ahead of the JSON', () => {
    const text = `fio: nbd_connect_uri: nbd_connect_uri: connect: No such file or directory {oops}\n${JSON.stringify(fioJson(), null, 2)}\n`;
    expect(parseFioJson(extractJson(text), 'randread').iops).toBeCloseTo(22900.55, 2);
  });

  it('refuses a run that moved no data even though fio says error 0 (a failed connect looks like this)', () => {
    expect(() => parseFioJson(fioJson({ read: idle }), 'randread')).toThrow(/moved no data/);
  });

  it('refuses a job error', () => {
    expect(() => parseFioJson(fioJson({ error: 5 }), 'randread')).toThrow(FioError);
    expect(() => parseFioJson(fioJson({ error: 5 }), 'randread')).toThrow(/error 5/);
  });

  it('refuses I/O in the wrong direction, missing percentiles, no JSON and odd job counts', () => {
    expect(() => parseFioJson(fioJson(), 'randwrite')).toThrow(/no data|reads in a randwrite run/);
    const noPct = fioJson({ read: { ...idle, io_bytes: 4096, total_ios: 1, iops: 1, bw_bytes: 1, runtime: 1 } });
    expect(() => parseFioJson(noPct, 'randread')).toThrow(/percentile/);
    expect(() => extractJson('fio: something went wrong')).toThrow(/no JSON/);
    expect(() => extractJson('{\n "jobs": [')).toThrow(/does not parse/);
    expect(() => parseFioJson({ jobs: [] }, 'read')).toThrow(/0 jobs/);
    expect(() => parseFioJson({}, 'read')).toThrow(/no jobs/);
  });
});

describe('summary arithmetic', () => {
  const run = (iops: number, p50: number, p99: number, cpu?: number): MeasuredRun => ({
    fio: { rw: 'randread', iops, bwBytes: iops * 4096, ioBytes: 1, totalIos: 1, clatP50Ns: p50, clatP99Ns: p99, clatMeanNs: 0, runtimeMs: 10_000, usrCpu: 0, sysCpu: 0 },
    serverCpuSeconds: cpu,
    wallSeconds: cpu === undefined ? undefined : 10,
  });

  it('takes medians (odd and even counts)', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
  });

  it('measures spread as the largest distance from the median', () => {
    expect(spread([90, 100, 120])).toBeCloseTo(0.2);
    expect(spread([5, 5, 5])).toBe(0);
  });

  it('summarizes each figure by its own median and converts units', () => {
    const s = summarize([run(10_000, 500_000, 2_000_000, 1), run(30_000, 300_000, 9_000_000, 2), run(20_000, 400_000, 1_000_000, 1.5)]);
    expect(s.runs).toBe(3);
    expect(s.iops).toBe(20_000);
    expect(s.mbps).toBeCloseTo((20_000 * 4096) / 1e6);
    expect(s.p50Us).toBe(400);
    expect(s.p99Us).toBe(2000);
    // CPU seconds per request: 1 s / (10k IOPS * 10 s) = 10 µs; 2 / 300k = 6.67; 1.5 / 200k = 7.5 -> median 7.5.
    expect(s.serverCpuUsPerIo).toBeCloseTo(7.5);
    expect(s.iopsSpread).toBeCloseTo(0.5);
  });

  it('leaves server CPU out when it was not measured', () => {
    expect(summarize([run(1000, 1, 1)]).serverCpuUsPerIo).toBeUndefined();
  });

  it('computes lunrig / peer ratios and refuses a zero denominator', () => {
    expect(ratio(81, 100)).toBeCloseTo(0.81);
    expect(ratio(150, 100)).toBe(1.5);
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(Number.NaN, 1)).toBeUndefined();
    expect(formatRatio(1.514)).toBe('1.51x');
    expect(formatRatio(undefined)).toBe('n/a');
  });
});
