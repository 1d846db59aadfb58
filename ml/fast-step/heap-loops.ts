/**
 * The small kernels of a training step as plain loops over the wasm heap
 * (offsets in floats into one Float32Array of the whole heap). Each runs
 * once over its data; tfjs would run several kernels and allocate a tensor
 * per intermediate.
 */

/**
 * Softmax cross-entropy, mean over the batch, as `tf.losses.softmaxCrossEntropy`:
 * returns the loss and writes d(loss)/d(logits) = (softmax - labels) / rows.
 * Labels are [rows, classes]; logits and their gradient are [rows, classes],
 * or [classes, rows] when `classesMajor` (the dense layers' layout).
 * `divisor` (default `rows`) is the whole batch's rows when these rows are
 * one part of it: the parts' losses and gradients then add up to the batch's.
 */
export function softmaxCrossEntropy(h: Float32Array, logits: number, labels: number, rows: number, classes: number, grad: number, classesMajor = false, divisor = rows): number {
  const rowStep = classesMajor ? 1 : classes;
  const k1 = classesMajor ? rows : 1;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const l = logits + r * rowStep;
    const y = labels + r * classes;
    const g = grad + r * rowStep;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) if (h[l + k * k1]! > max) max = h[l + k * k1]!;
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(h[l + k * k1]! - max);
    const logSum = Math.log(sum) + max;
    for (let k = 0; k < classes; k++) {
      const yk = h[y + k]!;
      const logP = h[l + k * k1]! - logSum;
      if (yk !== 0) total -= yk * logP;
      h[g + k * k1] = (Math.exp(logP) - yk) / divisor;
    }
  }
  return total / divisor;
}

/** x[r, c] += bias[r] (bias -1: none), then the ReLU if asked, over a [rows, cols] matrix in place. */
export function biasRelu(h: Float32Array, x: number, bias: number, rows: number, cols: number, relu: boolean): void {
  for (let r = 0; r < rows; r++) {
    const b = bias >= 0 ? h[bias + r]! : 0;
    const base = x + r * cols;
    for (let c = 0; c < cols; c++) {
      const v = h[base + c]! + b;
      h[base + c] = relu && !(v > 0) ? 0 : v;
    }
  }
}

/** out[r] = sum over c of g[r, c]. */
export function rowSums(h: Float32Array, g: number, rows: number, cols: number, out: number): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = g + r * cols;
    for (let c = 0; c < cols; c++) s += h[base + c]!;
    h[out + r] = s;
  }
}

/** g[i] = 0 where the ReLU output y[i] is not positive (in place). */
export function reluGrad(h: Float32Array, g: number, y: number, n: number): void {
  for (let i = 0; i < n; i++) if (!(h[y + i]! > 0)) h[g + i] = 0;
}

/** out[c] = sum over rows of g[row, c] (the bias gradient). */
export function columnSums(h: Float32Array, g: number, rows: number, cols: number, out: number): void {
  h.fill(0, out, out + cols);
  for (let r = 0; r < rows; r++) {
    const base = g + r * cols;
    for (let c = 0; c < cols; c++) h[out + c] = h[out + c]! + h[base + c]!;
  }
}

export interface PoolGeometry {
  batch: number;
  inH: number;
  inW: number;
  channels: number;
  outH: number;
  outW: number;
  sizeH: number;
  sizeW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
}

/**
 * Max-pool gradient fused with the ReLU before it and that layer's bias
 * gradient: each output gradient goes to the first maximal input of its
 * window (tfjs's tie rule), and only if that maximum is positive when the
 * pool reads a ReLU's output (the ReLU passes no gradient at 0). `dx` is
 * written in full; `dBias` (or -1) gets the per-channel sums.
 */
export function maxPoolReluGrad(h: Float32Array, x: number, dy: number, dx: number, geo: PoolGeometry, relu: boolean, dBias: number): void {
  const { batch, inH: H, inW: W, channels: C, outH: OH, outW: OW, sizeH, sizeW, strideH, strideW, padTop, padLeft } = geo;
  h.fill(0, dx, dx + batch * H * W * C);
  if (dBias >= 0) h.fill(0, dBias, dBias + C);
  const floor = relu ? 0 : -Infinity;
  for (let n = 0; n < batch; n++) {
    const xb = x + n * H * W * C;
    const db = dx + n * H * W * C;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = oy * strideH - padTop;
      const yStart = Math.max(0, y0);
      const yEnd = Math.min(H, y0 + sizeH);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = ox * strideW - padLeft;
        const xStart = Math.max(0, x0);
        const xEnd = Math.min(W, x0 + sizeW);
        const go = dy + ((n * OH + oy) * OW + ox) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let yy = yStart; yy < yEnd; yy++) {
            let p = (yy * W + xStart) * C + c;
            for (let xx = xStart; xx < xEnd; xx++, p += C) {
              const v = h[xb + p]!;
              if (v > best || at < 0) {
                best = v;
                at = p;
              }
            }
          }
          if (at < 0 || !(best > floor)) continue;
          const g = h[go + c]!;
          h[db + at] = h[db + at]! + g;
          if (dBias >= 0) h[dBias + c] = h[dBias + c]! + g;
        }
      }
    }
  }
}
