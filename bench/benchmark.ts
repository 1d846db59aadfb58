/** Figures a benchmark reports, under the key names its issue gives. */
export type BenchFigures = Record<string, number | string | boolean | null | object>;

export interface BenchContext {
  /** Print one line of the human-readable table. */
  log(line: string): void;
}

export interface Benchmark {
  description: string;
  run(ctx: BenchContext): Promise<BenchFigures>;
}
