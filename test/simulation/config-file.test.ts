import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSimulationConfig, readConfigFile } from '../../simulation/simulation-config.js';

describe('simulation config files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strata-simcfg-'));

  it('reads YAML and JSON alike; flags override the file', async () => {
    const yml = path.join(dir, 'sim.yaml');
    writeFileSync(yml, '# a small run\nclients: 40\nperRound: 8\nrounds: 3\npartition: "dirichlet:0.5"\n');
    const json = path.join(dir, 'sim.json');
    writeFileSync(json, JSON.stringify({ clients: 40, perRound: 8, rounds: 3, partition: 'dirichlet:0.5' }));
    const fromYaml = await readConfigFile(yml);
    expect(fromYaml).toEqual(await readConfigFile(json));
    const config = compileSimulationConfig({ file: fromYaml, fileName: yml, flags: { rounds: 5 } });
    expect(config).toMatchObject({ clients: 40, perRound: 8, rounds: 5 });
  });

  it('broken YAML is a coded error naming the file', async () => {
    const bad = path.join(dir, 'bad.yml');
    writeFileSync(bad, 'clients: [1, 2\n');
    await expect(readConfigFile(bad)).rejects.toMatchObject({ code: 'STRATA_ERR_BAD_CONFIG', message: expect.stringContaining('bad.yml') });
  });
});
