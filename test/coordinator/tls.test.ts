import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger, startCoordinator, waitFor } from './helpers.js';
import { AgentConnection } from '../../client-runtime/agent-connection.js';

describe('TLS', () => {
  it('serves wss:// and https:// with --tls-cert/--tls-key; an agent trusting the CA completes a round', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
        '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const cert = readFileSync(path.join(dir, 'cert.pem'));
      const key = readFileSync(path.join(dir, 'key.pem'));
      const h = await startCoordinator({ tls: { cert, key }, perRound: 1, rounds: 1, tokens: new Map([['s1', 't-s1']]), dashboardToken: 'tls-dashboard-1' }, 10);
      expect(h.url.startsWith('wss://')).toBe(true);
      // The dashboard over TLS too, with its token (its cookie marked Secure).
      const get = (p: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> => new Promise((resolve, reject) => {
        https.get(`${h.coordinator.httpUrl}${p}`, { ca: cert }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        }).on('error', reject);
      });
      expect((await get('/')).status).toBe(401);
      const page = await get('/?token=tls-dashboard-1');
      expect(page.status).toBe(200);
      expect(page.body).toContain('<canvas id="chart-accuracy"');
      expect(String(page.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict; Path=\/; Secure/);
      const agent = new AgentConnection({
        url: h.url, agentId: 's1', token: 't-s1', profile: 'test', logger: silentLogger, ca: cert,
        train: async (_a, g) => ({ delta: new Float32Array(g.length).fill(1), metrics: { numSamples: 1, loss: 0, accuracy: 1, deviceSeconds: 0, hostSeconds: 0 } }),
      });
      agent.start();
      await h.coordinator.finished;
      await waitFor(() => agent.acks.length === 1, 5000, 'ack');
      expect(h.store.latestModel()!.weights[0]).toBe(1);
      await agent.stop();
      await h.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
