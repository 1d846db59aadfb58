import { execFileSync, spawnSync } from 'node:child_process';

/**
 * The PyTorch side of `npm run bench -- train`: the same models, batch,
 * optimizer and samples, in PyTorch on the same CPU with the same thread
 * count. The script reads the MNIST rows the bench wrote (uint8 features,
 * then uint8 labels), converts each batch from bytes as Strata does, and
 * prints one JSON line.
 */
const SCRIPT = String.raw`
import json, sys, time
import numpy as np
import torch
import torch.nn as nn
a = json.loads(sys.argv[1])
torch.set_num_threads(a['threads'])
torch.manual_seed(1)
n = a['warmup'] + a['samples']
rows = a['rows']
raw = np.fromfile(a['data'], dtype=np.uint8)
X = torch.from_numpy(raw[: n * 784].copy()).view(n, 784)
Y = torch.from_numpy(raw[rows * 784 : rows * 784 + n].astype(np.int64).copy())
if a['model'] == 'mlp':
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    shape = (-1, 784)
else:
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    shape = (-1, 1, 28, 28)
opt = torch.optim.Adam(model.parameters(), lr=0.001)
loss_fn = nn.CrossEntropyLoss()
B = a['batch']
def run(start, end):
    total = 0.0
    for i in range(start, end, B):
        x = X[i : min(end, i + B)].float().div_(255).view(shape)
        y = Y[i : min(end, i + B)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item() * y.shape[0]
    return total / (end - start)
run(0, a['warmup'])
t0 = time.perf_counter()
loss = run(a['warmup'], n)
seconds = time.perf_counter() - t0
print(json.dumps({'side': 'pytorch', 'model': a['model'], 'threads': torch.get_num_threads(), 'samples': a['samples'],
                  'seconds': seconds, 'samplesPerSecond': a['samples'] / seconds, 'loss': loss, 'torch': torch.__version__}))
`;

/** `data`: a file of `rows` MNIST rows (rows x 784 feature bytes, then rows label bytes). */
export interface TorchArgs { model: 'mlp' | 'cnn'; threads: number; samples: number; warmup: number; batch: number; data: string; rows: number }
export interface TorchResult { samplesPerSecond: number; seconds: number; loss: number; threads: number; torch: string }

/** The first interpreter (`python3`, then Debian's `/usr/bin/python3`) where `import torch` works, or undefined. */
export function findTorchPython(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return python;
  }
  return undefined;
}

export function runTorch(python: string, args: TorchArgs): TorchResult {
  const out = execFileSync(python, ['-c', SCRIPT, JSON.stringify(args)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    // One thread means one: keep OpenMP and OpenBLAS from starting their own pools beside torch's.
    env: { ...process.env, OMP_NUM_THREADS: String(args.threads), OPENBLAS_NUM_THREADS: String(args.threads) },
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as TorchResult;
}
