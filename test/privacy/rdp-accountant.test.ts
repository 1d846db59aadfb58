import { describe, expect, it } from 'vitest';
import { RdpAccountant, rdpToEpsilon, sampledGaussianRdp } from '../../privacy/rdp-accountant.js';

describe('RDP accountant (sampled Gaussian)', () => {
  it('agrees within 1% with Opacus: q = 0.04, sigma = 1.5, 2,250 steps, delta = 1e-5 -> epsilon 7.3291', () => {
    // Opacus' own test (opacus/tests/accountants_test.py, test_rdp_accountant): 90 epochs at sample rate 0.04.
    const a = new RdpAccountant();
    a.step(0.04, 1.5, 2250);
    expect(Math.abs(a.epsilon(1e-5) - 7.32911117143) / 7.32911117143).toBeLessThan(0.01);
  });

  it('agrees with the TF Privacy / Opacus worked example: (1e-5, 1.0) x 10 then (1e-4, 3.0) x 4 at orders 2..32 -> epsilon 0.336 at order 23', () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const rdp = orders.map((o) => 10 * sampledGaussianRdp(1e-5, 1.0, o) + 4 * sampledGaussianRdp(1e-4, 3.0, o));
    const { epsilon, order } = rdpToEpsilon(orders, rdp, 1e-5);
    expect(Math.abs(epsilon - 0.336) / 0.336).toBeLessThan(0.01);
    expect(order).toBe(23);
  });

  it('without sampling is the Gaussian mechanism: RDP alpha / (2 sigma^2)', () => {
    expect(sampledGaussianRdp(1, 2, 8)).toBeCloseTo(1, 12);
  });

  it('fractional orders sit between their integer neighbours', () => {
    const lo = sampledGaussianRdp(0.1, 1.1, 3);
    const mid = sampledGaussianRdp(0.1, 1.1, 3.5);
    const hi = sampledGaussianRdp(0.1, 1.1, 4);
    expect(mid).toBeGreaterThan(lo);
    expect(mid).toBeLessThan(hi);
  });

  it('epsilonAfter looks ahead without spending', () => {
    const a = new RdpAccountant();
    a.step(0.1, 1, 10);
    const ahead = a.epsilonAfter(0.1, 1, 1e-5);
    expect(ahead).toBeGreaterThan(a.epsilon(1e-5));
    a.step(0.1, 1);
    expect(a.epsilon(1e-5)).toBeCloseTo(ahead, 10);
  });
});
