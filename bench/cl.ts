import type { Benchmark } from './benchmark.js';
import { clRun, mean } from './cl-runs.js';

/** Issue 3's accuracy claims: split-mnist, MLP, 1 epoch/task, batch 10 + replay 10, memory 100, mean of 3 seeds. */
const bench: Benchmark = {
  description: 'continual-learning accuracy on split-mnist: finetune, ER without storage, CarM (mean of 3 seeds)',
  async run({ log }) {
    const seeds = [1, 2, 3];
    const base = { memory: 100, batch: 10, replay: 10, epochs: 1 } as const;
    const configs = {
      finetune: { ...base, method: 'finetune', storage: 'none', swap: 'off' },
      erNoStorage: { ...base, method: 'er', storage: 'none', swap: 'off' },
      carm: { ...base, method: 'er', storage: 'all', swap: 'async', swapRatio: 0.5, policy: 'random' },
      derppCarm: { ...base, method: 'derpp', storage: 'all', swap: 'async', swapRatio: 0.5, policy: 'random' },
    } as const;
    const out: Record<string, number> = {};
    for (const [name, cfg] of Object.entries(configs)) {
      const accs: number[] = [];
      const forgetting: number[] = [];
      for (const seed of seeds) {
        const r = await clRun({ ...cfg, seed });
        accs.push(r.finalAverageAccuracy);
        forgetting.push(r.forgetting);
      }
      out[`${name}FinalAverageAccuracy`] = mean(accs);
      out[`${name}Forgetting`] = mean(forgetting);
      log(`  ${name.padEnd(12)} final average accuracy ${mean(accs).toFixed(4)}  (seeds: ${accs.map((a) => a.toFixed(3)).join(', ')})  forgetting ${mean(forgetting).toFixed(3)}`);
    }
    const gain = out['carmFinalAverageAccuracy']! - out['erNoStorageFinalAverageAccuracy']!;
    log(`CarM - ER(no storage) = +${gain.toFixed(3)} (target >= +0.10); CarM >= 0.88: ${out['carmFinalAverageAccuracy']! >= 0.88 ? 'yes' : 'NO'}`);
    return { ...out, carmGainOverEr: gain, seeds: seeds.length };
  },
};

export default bench;
