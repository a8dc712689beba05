/** One measured figure, as every bench module's run() reports it. */
export type BenchRow = { group: string; name: string; value: number; unit: string; note?: string };
