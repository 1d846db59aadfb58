/**
 * Support for Strata's own tests and benches (not shipped): real servers on
 * loopback and comparisons of runs.
 */
import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now (for a server that cannot take port 0, like redis-server). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
