import { Redis } from 'ioredis';
import { StrataError, badValue } from '../../common/strata-error.js';

/** The URL without its password, for logs, reports and error details. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.href;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** Checks a `redis://` / `rediss://` URL; `name` says where it came from (`--redis`, `redis.url`). */
export function checkRedisUrl(url: string, name: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badValue(name, `'${redactRedisUrl(url)}' is not a URL (expected redis://HOST:PORT)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw badValue(name, `'${redactRedisUrl(url)}' is not a redis:// or rediss:// URL`);
  return url;
}

/**
 * Opens a Redis connection and waits until it answers, so an unreachable
 * server is one coded error (STRATA_ERR_REDIS) instead of endless retries.
 * After that, the connection reconnects on its own, and commands wait for it
 * (BullMQ needs `maxRetriesPerRequest: null`).
 */
export async function connectRedis(url: string, name: string, timeoutMs = 5000): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: timeoutMs, connectionName: name, enableReadyCheck: true });
  // Errors while connected show up as failed commands; the connection's own 'error' events must not crash the process.
  redis.on('error', () => undefined);
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new StrataError('STRATA_ERR_REDIS', `cannot reach Redis at ${redactRedisUrl(url)} (${(err as Error).message})`, { url: redactRedisUrl(url) }, { cause: err });
  }
  return redis;
}
