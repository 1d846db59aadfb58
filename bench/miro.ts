import type { ClConfig, ClReport } from '../client-runtime/cl-experiment.js';
import { buildCandidateSpace, extremes, type MiroCandidate } from '../client-runtime/miro/candidate-space.js';
import type { Benchmark } from './benchmark.js';
import { clRun, mean } from './cl-runs.js';

/**
 * Issue 4: Miro's cost-effectiveness (final average accuracy / total joules,
 * profiling included) on split-mnist, MLP, jetson-nano-5w, mean of 3 seeds,
 * against the largest and smallest fixed configuration of its candidate set
 * and the best fixed one found by running every candidate to the end (the
 * oracle). Runs are sequential (2 cores), interleaved by seed. Then the
 * same Miro (grid navigator: every candidate tried on both) runs on a Jetson
 * and on a low-end phone, with swap ratio as a third dimension (the one
 * where the two devices' costs differ: by their price lists, a stored-sample
 * read costs ~1.2 mJ on the Jetson's SD card (0.67 ms request latency at
 * 0.5 W storage + 1.25 W idle) against ~65 mJ for a training step of 28.7
 * MFLOP at 1.44 GFLOP/s, the phone's eMMC ~0.17 mJ against ~30 mJ; so swap
 * ratio 0.5 adds ~9% to a step's energy on the Jetson and ~3% on the phone).
 * Device seconds and joules are counted work (training and trial FLOPs,
 * validation passes, stored bytes and requests) priced by the device
 * profile, so they do not depend on this machine's speed or load: a run's
 * joules are the same on any host, and the ratios below carry no host noise.
 */
const bench: Benchmark = {
  description: 'Miro vs fixed configurations: cost-effectiveness on split-mnist, MLP, jetson-nano-5w (mean of 3 seeds); chosen configs on two devices',
  async run({ log }) {
    const seeds = Array.from({ length: Number(process.env['STRATA_BENCH_SEEDS'] ?? 3) }, (_, i) => i + 1);
    const base: Partial<ClConfig> = { method: 'er', memory: 100, batch: 10, replay: 10, epochs: 1, storage: 'all', swap: 'async', swapRatio: 0.5, policy: 'random' };
    const spaceOptions = { memories: [25, 100, 400], streamBuffers: [0.25, 0.5, 1], swapRatios: [0.5] };
    const space = buildCandidateSpace(spaceOptions);
    const { largest, smallest } = extremes(space);
    const fixed = (c: MiroCandidate): Partial<ClConfig> => ({ ...base, memory: c.memory, streamBuffer: c.streamBuffer, swapRatio: c.swapRatio });
    const jetson = 'jetson-nano-5w';
    const ce = new Map<string, number[]>();
    const acc = new Map<string, number[]>();
    const joules = new Map<string, number[]>();
    const note = (key: string, r: ClReport): void => {
      for (const [m, v] of [[ce, r.costEffectiveness], [acc, r.finalAverageAccuracy], [joules, r.energy.total]] as const) m.set(key, [...(m.get(key) ?? []), v]);
    };
    const shares: number[] = [];
    const miroChoices: string[][] = [];
    for (const seed of seeds) {
      const m = await clRun({ ...base, seed, profile: jetson, profiler: 'miro', miro: spaceOptions });
      note('miro', m);
      shares.push(m.profiling.share);
      miroChoices.push(m.miro!.configPerTask.map((c) => `em${c.memory}-sb${c.streamBuffer}-sr${c.swapRatio}`));
      log(`  seed ${seed} miro            acc ${m.finalAverageAccuracy.toFixed(4)}  ${m.energy.total.toFixed(1)} J (profiling ${m.profiling.joules.toFixed(1)} J, ${(m.profiling.share * 100).toFixed(1)}%)  CE ${(m.costEffectiveness * 1000).toFixed(3)} acc/kJ  tasks: ${miroChoices.at(-1)!.join(' ')} (profiled before tasks ${m.miro!.boundaries.map((b) => b.task + 1).join(', ')}; moot trial segments skipped: ${m.miro!.boundaries.filter((b) => b.skipped.length > 0).length}, ${m.miro!.boundaries.reduce((s, b) => s + (b.skipped[0]?.stepsSaved ?? 0), 0)} steps)`);
      for (const c of space.candidates) {
        const r = await clRun({ ...fixed(c), seed, profile: jetson });
        note(c.key, r);
        log(`  seed ${seed} ${c.key.padEnd(16)} acc ${r.finalAverageAccuracy.toFixed(4)}  ${r.energy.total.toFixed(1)} J  CE ${(r.costEffectiveness * 1000).toFixed(3)} acc/kJ`);
      }
    }
    const meanOf = (m: Map<string, number[]>, k: string): number => mean(m.get(k)!);
    log('  mean over seeds (cost-effectiveness = final average accuracy / total joules):');
    for (const k of ['miro', ...space.candidates.map((c) => c.key)]) {
      log(`    ${k.padEnd(18)} acc ${meanOf(acc, k).toFixed(4)}  ${meanOf(joules, k).toFixed(1)} J  CE ${(meanOf(ce, k) * 1000).toFixed(3)} acc/kJ`);
    }
    const oracle = space.candidates.map((c) => ({ key: c.key, ce: meanOf(ce, c.key) })).sort((a, b) => b.ce - a.ce)[0]!;
    const miro = meanOf(ce, 'miro');
    const largestFixed = meanOf(ce, largest.key);
    const smallestFixed = meanOf(ce, smallest.key);
    const profilingEnergyShare = mean(shares);
    log(`miro ${(miro * 1000).toFixed(3)} | largestFixed (${largest.key}) ${(largestFixed * 1000).toFixed(3)} | smallestFixed (${smallest.key}) ${(smallestFixed * 1000).toFixed(3)} | oracleBest (${oracle.key}) ${(oracle.ce * 1000).toFixed(3)}  [acc/kJ]`);
    log(`miro / largest ${(miro / largestFixed).toFixed(3)} (target >= 1) | miro / smallest ${(miro / smallestFixed).toFixed(3)} (target >= 1) | miro / oracle ${(miro / oracle.ce).toFixed(3)} (target >= 0.95) | profiling energy share ${(profilingEnergyShare * 100).toFixed(1)}% (target <= 15%)`);

    // Two devices, same seeds: every difference in the choices comes from the devices' costs (trial accuracies are the same runs' on both).
    const devices = [jetson, 'phone-lowend'] as const;
    // Every boundary profiled here (budget 1), so each seed compares five choices, not only the two the default budget
    // allows; and every candidate tried on both devices (grid navigator): a sampling navigator would try different
    // candidates on each (its weights follow the device's costs), and which pair of close candidates a round happens to
    // sample would decide whether the choices can differ at all.
    const space3 = { memories: [25, 100, 400], streamBuffers: [0.25, 0.5, 1], swapRatios: [0.1, 0.5], profilingBudget: 1, navigator: 'grid' as const };
    const chosen: Record<string, string[][]> = { [devices[0]]: [], [devices[1]]: [] };
    let boundaries = 0;
    let differing = 0;
    const why: string[] = [];
    for (const seed of seeds) {
      const runs = [];
      for (const device of devices) runs.push(await clRun({ ...base, seed, profile: device, profiler: 'miro', miro: space3 }));
      const [a, b] = runs as [ClReport, ClReport];
      chosen[devices[0]]!.push(a.miro!.boundaries.map((x) => x.chosen.key));
      chosen[devices[1]]!.push(b.miro!.boundaries.map((x) => x.chosen.key));
      log(`  seed ${seed} ${devices[0]}: ${chosen[devices[0]]!.at(-1)!.join(' ')}  (acc ${a.finalAverageAccuracy.toFixed(3)}, ${a.energy.total.toFixed(0)} J)`);
      log(`  seed ${seed} ${devices[1]}:   ${chosen[devices[1]]!.at(-1)!.join(' ')}  (acc ${b.finalAverageAccuracy.toFixed(3)}, ${b.energy.total.toFixed(0)} J)`);
      a.miro!.boundaries.forEach((ba, i) => {
        const bb = b.miro!.boundaries[i];
        if (bb === undefined) return;
        boundaries++;
        if (ba.chosen.key === bb.chosen.key) return;
        differing++;
        // Each device's choice against the other's, as this device scored and priced both.
        const show = (x: typeof ba, key: string): string => {
          const c = x.candidates.find((y) => y.key === key);
          return c === undefined ? `${key} (not trialed here)` : `${key} (acc ${c.accuracy.toFixed(3)}, ${c.joules.toFixed(1)} J, ${(c.utility * 1000).toFixed(2)} acc/kJ${c.kept ? '' : ', below the cutline'})`;
        };
        const line = `    seed ${seed} before task ${ba.task + 1}: ${devices[0]} chose ${show(ba, ba.chosen.key)} over ${show(ba, bb.chosen.key)}; `
          + `${devices[1]} chose ${show(bb, bb.chosen.key)} over ${show(bb, ba.chosen.key)}`;
        why.push(line);
        log(line);
      });
    }
    log(`chosen configurations differ at ${differing} of ${boundaries} task boundaries between ${devices.join(' and ')}`);
    return {
      miro, largestFixed, smallestFixed, oracleBest: oracle.ce, oracleBestConfig: oracle.key, profilingEnergyShare,
      largestConfig: largest.key, smallestConfig: smallest.key,
      miroOverLargest: miro / largestFixed, miroOverSmallest: miro / smallestFixed, miroOverOracle: miro / oracle.ce,
      meanAccuracy: Object.fromEntries([...acc.keys()].map((k) => [k, meanOf(acc, k)])),
      meanJoules: Object.fromEntries([...joules.keys()].map((k) => [k, meanOf(joules, k)])),
      meanCostEffectiveness: Object.fromEntries([...ce.keys()].map((k) => [k, meanOf(ce, k)])),
      miroConfigPerTask: miroChoices,
      chosenConfigs: chosen, choicesDifferAt: differing, boundariesCompared: boundaries, whyTheyDiffer: why,
      profile: jetson, seeds: seeds.length,
    };
  },
};

export default bench;
