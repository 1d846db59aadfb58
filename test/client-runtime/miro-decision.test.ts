import { describe, expect, it } from 'vitest';
import { buildCandidateSpace, type MiroCandidate } from '../../client-runtime/miro/candidate-space.js';
import type { CandidateResult } from '../../client-runtime/miro/choice.js';
import { decide, judgedKey, scoreCanChangeChoice, standIns, type Judged } from '../../client-runtime/miro/decision.js';

const space = buildCandidateSpace({ memories: [25, 100, 400], streamBuffers: [0.25, 0.5, 1], swapRatios: [0.5] });
const cand = (memory: number, streamBuffer: number): MiroCandidate => space.candidates.find((c) => c.memory === memory && c.streamBuffer === streamBuffer)!;
const N = 100;
const result = (c: MiroCandidate, accuracy: number, joules: number): CandidateResult => ({ candidate: c, accuracy, joules, trialJoules: 0, trialSeconds: 0, validationSamples: N });
const pendingOf = (...xs: [MiroCandidate, number][]) => ({ candidates: xs.map(([candidate, joules]) => ({ candidate, joules, trialJoules: 0, trialSeconds: 0, validationSamples: N })) });
const bothJudged: Judged = { memory: true, swapRatio: true };
const present = { memory: 100, swapRatio: 0.5 };

/** The choice for each accuracy k/N the pending candidates could score. */
function choicesOver(known: CandidateResult[], pending: ReturnType<typeof pendingOf>, judged: Judged): Set<string> {
  const out = new Set<string>();
  for (let k = 0; k <= N; k++) out.add(decide([...known, ...pending.candidates.map((c) => ({ ...c, accuracy: k / N }))], judged, present, 0.3).chosen.key);
  return out;
}

describe("Miro's decision", () => {
  it('before task 0 one stand-in per stream buffer enters the rule: the one nearest the present EM size', () => {
    const judged: Judged = { memory: false, swapRatio: false };
    expect(judgedKey(cand(25, 0.5), judged)).toBe('*/*');
    expect(judgedKey(cand(25, 0.5), bothJudged)).toBe('25/0.5');
    const all = space.candidates.map((c) => result(c, c.streamBuffer === 1 ? 0.95 : 0.94, 60 * c.streamBuffer * 4));
    const ins = standIns(all, judged, present);
    expect(ins.map((r) => r.candidate.key).sort()).toEqual([cand(100, 0.25).key, cand(100, 0.5).key, cand(100, 1).key].sort());
    expect(decide(all, judged, present, 0.3).chosen.key).toBe(cand(100, 0.25).key);
  });

  it('a trial of the largest stream buffer is moot when the cheaper ones tie at the top: whatever it scores, the cheapest wins', () => {
    const judged: Judged = { memory: false, swapRatio: false };
    const known = [25, 100, 400].flatMap((m) => [result(cand(m, 0.25), 0.94, 59), result(cand(m, 0.5), 0.94, 118)]);
    const pending = pendingOf([cand(25, 1), 236], [cand(100, 1), 236], [cand(400, 1), 236]);
    expect(scoreCanChangeChoice(known, pending, N, judged, present, 0.3)).toBe(false);
    expect(choicesOver(known, pending, judged)).toEqual(new Set([cand(100, 0.25).key]));
  });

  it('is not moot when the pending score can win outright: same joules, and a higher accuracy than any known', () => {
    const known = [result(cand(100, 0.25), 0.845, 40), result(cand(100, 0.5), 0.845, 80)];
    const pending = pendingOf([cand(25, 0.25), 40]);
    expect(scoreCanChangeChoice(known, pending, N, bothJudged, present, 0.3)).toBe(true);
    expect(choicesOver(known, pending, bothJudged).size).toBeGreaterThan(1);
  });

  it('is not moot when a dear candidate, scoring high, would push a cheap one below the cutline', () => {
    // Three configurations keep two. If sb1 stays low, sb0.25 and sb0.5 are kept and the cheaper sb0.25 wins; if sb1
    // scores 1.0, it and sb0.5 are kept (sb0.25's 0.80 is well below 0.90), and sb0.5 wins on accuracy per joule.
    const known = [result(cand(100, 0.25), 0.8, 40), result(cand(100, 0.5), 0.9, 80)];
    const pending = pendingOf([cand(100, 1), 160]);
    expect(scoreCanChangeChoice(known, pending, N, bothJudged, present, 0.3)).toBe(true);
    expect(choicesOver(known, pending, bothJudged)).toEqual(new Set([cand(100, 0.25).key, cand(100, 0.5).key]));
  });

  it('agrees with trying every score, on random rounds', () => {
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let moot = 0;
    for (let round = 0; round < 200; round++) {
      const picks = [...space.candidates].sort(() => rand() - 0.5).slice(0, 2 + Math.floor(rand() * 4));
      const known = picks.slice(1).map((c) => result(c, Math.round((0.6 + 0.4 * rand()) * N) / N, 40 * c.streamBuffer * 4));
      const x = picks[0]!;
      const pending = pendingOf([x, 40 * x.streamBuffer * 4]);
      const canChange = scoreCanChangeChoice(known, pending, N, bothJudged, present, 0.3);
      expect(canChange).toBe(choicesOver(known, pending, bothJudged).size > 1);
      if (!canChange) moot++;
    }
    // Both outcomes occur: the check is not a constant.
    expect(moot).toBeGreaterThan(0);
    expect(moot).toBeLessThan(200);
  });

  it('an unknown sample count or nothing pending is never called moot', () => {
    const known = [result(cand(100, 0.25), 0.8, 40)];
    expect(scoreCanChangeChoice(known, pendingOf([cand(100, 1), 160]), 0, bothJudged, present, 0.3)).toBe(true);
    expect(scoreCanChangeChoice(known, { candidates: [] }, N, bothJudged, present, 0.3)).toBe(true);
  });
});
