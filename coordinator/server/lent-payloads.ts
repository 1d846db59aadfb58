import { WebSocket } from 'ws';

/** A complete binary message at least this long is read into the server's reused buffer. */
export const LENT_PAYLOAD_MIN_BYTES = 256 * 1024;

/**
 * What of ws's Receiver (ws 8) this module relies on: the chunks the socket
 * delivered, their total, and the header fields of the frame whose payload
 * is being read. Checked before use; a Receiver without them is left alone.
 */
interface ReceiverInternals {
  consume(n: number): Buffer;
  _buffers: Buffer[];
  _bufferedBytes: number;
  _fin: boolean;
  _opcode: number;
  _fragmented: number;
  _compressed: boolean;
}

function hasInternals(r: unknown): r is ReceiverInternals {
  const x = r as Partial<Record<keyof ReceiverInternals, unknown>> | null;
  return x !== null && typeof x === 'object' && typeof x.consume === 'function' && Array.isArray(x._buffers) && typeof x._bufferedBytes === 'number'
    && typeof x._fin === 'boolean' && typeof x._opcode === 'number' && typeof x._fragmented === 'number' && typeof x._compressed === 'boolean';
}

/**
 * One buffer the WebSocket server reads every large binary message into
 * (an update frame: hundreds of KB to MB), instead of ws allocating a new
 * one per message and copying the socket's chunks into it.
 *
 * Why: at 1,000 agents the coordinator took in ~340 MB/s of update frames,
 * each read twice into fresh memory (Node's 64 KiB socket reads, then ws's
 * copy of the whole payload). The payload copies were 4 GB of the 9.4 GB
 * allocated in a 10-round run, and V8 runs a mark-compact every 30-50 ms
 * to free such garbage (~14% of the coordinator's time), with 50-60 MB of
 * it waiting at the peaks of resident memory. With the copies going into
 * one reused buffer, the bench measured ~+30% end-to-end intake and half
 * the mark-compacts.
 *
 * The contract this puts on the server: a `message` handler for a binary
 * message is done with its bytes when it returns (the next large message
 * overwrites them). ws emits a message synchronously from the data that
 * completed it (`allowSynchronousEvents`, which the server sets), so no
 * other message is read in between. Fragmented and compressed messages,
 * text, and payloads that arrived in one socket chunk (ws hands out a view
 * of it, no copy) are read as ws reads them.
 */
export class PayloadLender {
  #buffer: Buffer | undefined;
  /** Messages read into the lent buffer so far. */
  lent = 0;

  /** Reads large binary payloads of `receiver` (a ws Receiver) into this lender's buffer; false when it is not one this module knows. */
  attach(receiver: unknown): boolean {
    if (!hasInternals(receiver)) return false;
    const consume = receiver.consume;
    receiver.consume = (n: number): Buffer => {
      const first = receiver._buffers[0];
      // ws copies only a payload spread over several chunks, of a frame that is a whole binary message.
      if (n < LENT_PAYLOAD_MIN_BYTES || first === undefined || n <= first.length || !receiver._fin || receiver._fragmented !== 0
        || receiver._opcode !== 2 || receiver._compressed) {
        return consume.call(receiver, n);
      }
      return this.#copyOut(receiver, n);
    };
    return true;
  }

  /** What ws's consume does for a payload over several chunks, into the lent buffer. */
  #copyOut(r: ReceiverInternals, n: number): Buffer {
    if (this.#buffer === undefined || this.#buffer.length < n) this.#buffer = Buffer.allocUnsafeSlow(Math.max(n, 2 * (this.#buffer?.length ?? 0)));
    const dst = this.#buffer.subarray(0, n);
    r._bufferedBytes -= n;
    let offset = 0;
    while (offset < n) {
      const buf = r._buffers[0]!;
      const take = Math.min(buf.length, n - offset);
      dst.set(take === buf.length ? buf : buf.subarray(0, take), offset);
      if (take === buf.length) r._buffers.shift();
      else r._buffers[0] = buf.subarray(take);
      offset += take;
    }
    this.lent++;
    return dst;
  }
}

type SetSocket = (this: WebSocket, socket: unknown, head: unknown, options: unknown) => void;

/** A ws WebSocket class for a server whose connections read large binary payloads into `lender`'s buffer. */
export function lendingWebSocket(lender: PayloadLender): typeof WebSocket {
  const setSocket = (WebSocket.prototype as unknown as { setSocket: SetSocket }).setSocket;
  return class LendingWebSocket extends WebSocket {
    setSocket(socket: unknown, head: unknown, options: unknown): void {
      setSocket.call(this, socket, head, options);
      lender.attach((this as unknown as { _receiver: unknown })._receiver);
    }
  };
}
