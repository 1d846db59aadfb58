import { describe, expect, it } from 'vitest';
import { parseBackendRequest } from '../../ml/backend.js';

describe('backend requests', () => {
  it('accepts the known names and aliases', () => {
    expect(parseBackendRequest(undefined)).toBe('auto');
    expect(parseBackendRequest('WASM')).toBe('wasm');
    expect(parseBackendRequest('node')).toBe('tfjs-node');
    expect(parseBackendRequest('tensorflow')).toBe('tfjs-node');
    expect(parseBackendRequest('cpu')).toBe('cpu');
  });

  it('an unknown backend is a coded flag error', () => {
    expect(() => parseBackendRequest('gpu')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_OPTION', details: expect.objectContaining({ option: 'backend' }) }));
    expect(() => parseBackendRequest('gpu', '--backend')).toThrow(expect.objectContaining({ code: 'STRATA_ERR_BAD_FLAG', details: expect.objectContaining({ flag: '--backend' }) }));
  });
});
