import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { StrataError, badValue } from '../../common/strata-error.js';
import { AGENT_ID_PATTERN } from '../../protocol/index.js';

/**
 * Per-agent tokens. Comparison is constant-time over SHA-256 digests (equal
 * lengths whatever the inputs), and an unknown agent id costs the same
 * comparison against a dummy, so timing reveals neither ids nor tokens.
 */
export class TokenAuthenticator {
  readonly #digests: ReadonlyMap<string, Buffer>;
  static readonly #dummy = createHash('sha256').update('strata:no-such-agent').digest();

  constructor(tokens: ReadonlyMap<string, string>) {
    const digests = new Map<string, Buffer>();
    for (const [id, token] of tokens) digests.set(id, digest(token));
    this.#digests = digests;
  }

  get size(): number {
    return this.#digests.size;
  }

  verify(agentId: unknown, token: unknown): boolean {
    if (typeof agentId !== 'string' || typeof token !== 'string' || token.length === 0) return false;
    const expected = this.#digests.get(agentId);
    const ok = timingSafeEqual(expected ?? TokenAuthenticator.#dummy, digest(token));
    return ok && expected !== undefined;
  }
}

/** SHA-256 of a token: compared with timingSafeEqual, equal lengths whatever the inputs. */
export function tokenDigest(token: string): Buffer {
  return digest(token);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Parses `<agent-id> <token>` lines; `#` starts a comment; blank lines are skipped. */
export function parseTokens(text: string, file = 'tokens'): Map<string, string> {
  const tokens = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    const where = `${file}:${i + 1}`;
    if (parts.length !== 2) throw new StrataError('STRATA_ERR_BAD_TOKENS', `${where}: expected '<agent-id> <token>'`, { file, line: i + 1 });
    const [id, token] = parts as [string, string];
    if (!AGENT_ID_PATTERN.test(id)) throw new StrataError('STRATA_ERR_BAD_TOKENS', `${where}: bad agent id '${id.slice(0, 64)}'`, { file, line: i + 1 });
    if (tokens.has(id)) throw new StrataError('STRATA_ERR_BAD_TOKENS', `${where}: agent '${id}' listed twice`, { file, line: i + 1 });
    tokens.set(id, token);
  });
  return tokens;
}

/** Reads a tokens file (`<agent-id> <token>` lines); `name` is what the caller calls it (`tokens`, or the CLI's `--tokens`). */
export function loadTokensFile(file: string, name = 'tokens'): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw badValue(name, `cannot read ${file} (${(err as Error).message})`, { file });
  }
  return parseTokens(text, file);
}
