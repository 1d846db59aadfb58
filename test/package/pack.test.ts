/**
 * Strata as a package: `npm pack`, the tarball installed into an empty
 * TypeScript project, a consumer compiled with `strict` against the shipped
 * declarations, and a federation of the consumer's own model run through
 * the public API.
 *
 * The tarball is unpacked into the project's node_modules/strata; Strata's
 * dependencies are linked from this checkout's node_modules (installing them
 * from the registry would download them again; npm ci already did).
 * `skipLibCheck` as tfjs needs (its own .d.ts files do not pass strict
 * checks); the consumer's use of Strata's types is checked in full.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

const consumer = `
import * as tf from '@tensorflow/tfjs';
import { pino } from 'pino';
import { buildModel, flatModel, loadProfile, syntheticDataset, testSetEvaluator, type ModelFactory, type StrataErrorCode } from 'strata';
import { Coordinator, CoordinatorStore, FedProx, ServerEvaluation } from 'strata/coordinator';
import { DeviceAgent, type AgentReport } from 'strata/device';
import { PROTOCOL_VERSION } from 'strata/protocol';

// The consumer's own model: not one of Strata's.
const tinyCnn: ModelFactory = (shape, seed) => tf.sequential({
  name: 'tiny-cnn',
  layers: [
    tf.layers.reshape({ name: 'img', inputShape: [shape.inputShape[0] * shape.inputShape[1] * shape.inputShape[2]], targetShape: shape.inputShape }),
    tf.layers.conv2d({ name: 'c1', filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
    tf.layers.maxPooling2d({ name: 'p1', poolSize: 2 }),
    tf.layers.flatten({ name: 'flat' }),
    tf.layers.dense({ name: 'out', units: shape.numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
  ],
});

const dir = process.argv[2]!;
const logger = pino({ level: 'warn' });
const data = syntheticDataset();
const shape = { inputShape: data.inputShape, numClasses: data.numClasses };
const server = await buildModel(tinyCnn, shape, 7);
const store = CoordinatorStore.open(dir + '/coordinator.sqlite');
const coordinator = new Coordinator(
  { port: 0, perRound: 2, rounds: 2, overCommit: 1, training: { epochs: 2, batchSize: 32, learningRate: 0.01, method: 'finetune' } },
  { strategy: new ServerEvaluation(new FedProx({ mu: 0.01 }), testSetEvaluator(server, data, 400)), model: flatModel(server), store, logger },
);
await coordinator.start();
const agents = [0, 1].map((i) => new DeviceAgent({
  url: coordinator.url, agentId: 'dev-' + i, token: 'x', profile: loadProfile('raspberry-pi-4'), data, shard: { index: i, count: 2 },
  samplesPerRound: 600, model: tinyCnn, db: dir + '/dev-' + i + '.sqlite', logger,
}));
for (const a of agents) await a.start();
await coordinator.finished;
const reports: AgentReport[] = [];
for (const a of agents) reports.push(await a.stop());
const status = coordinator.status();
await coordinator.stop(0);
store.close();
const code: StrataErrorCode = 'STRATA_ERR_BAD_OPTION';
console.log(JSON.stringify({
  protocol: PROTOCOL_VERSION, code, strategy: status.strategy, rounds: status.roundsCompleted, accuracy: status.lastAccuracy,
  layout: flatModel(server).layout.map((e) => e.name), trained: reports.map((r) => r.rounds.length),
}));
`;

describe('the npm package', () => {
  it("packs, installs into an empty TypeScript project, compiles strict against its declarations, and federates the consumer's own model", async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'strata-pack-'));
    const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, maxBuffer: 64 * 2 ** 20 });
    const info = (JSON.parse(packed) as { filename: string; files: { path: string }[] }[])[0]!;
    const files = info.files.map((f) => f.path);
    for (const entry of ['dist/index.d.ts', 'dist/coordinator/index.d.ts', 'dist/client-runtime/index.d.ts', 'dist/simulation/index.d.ts', 'dist/protocol/index.d.ts', 'dist/cli/strata.js']) {
      expect(files).toContain(entry);
    }
    expect(files.some((f) => f.startsWith('dist/bench/'))).toBe(false);

    const project = path.join(work, 'consumer');
    const modules = path.join(project, 'node_modules');
    mkdirSync(path.join(modules, 'strata'), { recursive: true });
    await run('tar', ['-xzf', path.join(work, info.filename), '-C', path.join(modules, 'strata'), '--strip-components', '1']);
    for (const name of readdirSync(path.join(root, 'node_modules'))) {
      if (name === '.bin' || name.startsWith('.') || name === 'strata') continue;
      symlinkSync(path.join(root, 'node_modules', name), path.join(modules, name));
    }
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noUncheckedIndexedAccess: true, types: ['node'], outDir: 'out', skipLibCheck: true },
      include: ['index.ts'],
    }));
    writeFileSync(path.join(project, 'index.ts'), consumer);
    await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project });
    const { stdout } = await run(process.execPath, [path.join(project, 'out/index.js'), work], {
      cwd: project, env: { ...process.env, STRATA_THREADS: '1' }, maxBuffer: 64 * 2 ** 20,
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(out).toMatchObject({ protocol: expect.any(Number), code: 'STRATA_ERR_BAD_OPTION', strategy: 'fedprox', rounds: 2, trained: [2, 2] });
    expect(out['layout']).toEqual(['c1/kernel', 'c1/bias', 'out/kernel', 'out/bias']);
    expect(out['accuracy']).toBeGreaterThan(0.5);
  }, 180_000);
});
