"""Training throughput of PyTorch on ringtrain's models, for comparison.

Trains, on real MNIST with Adam (Keras defaults) and sparse categorical
cross-entropy, the way the Go benchmark BenchmarkTrainStep does (one
optimiser step per mini-batch of already-loaded tensors), one of:

  --model mlp   Dense(h, relu)... -> Dense(10, softmax), widths --hidden
                (10,10: the Keras example; 512,512: 784-512-512-10)
  --model cnn   examples/cnn.json: Conv2D(32, 3×3, relu), max pool,
                Conv2D(64, 3×3, relu), max pool, Dense(128, relu), Dense(10)
  --model lstm  examples/lstm.json: 28 rows of 28 pixels through LSTM(128),
                Dense(10); learning rate 0.002

Prints one JSON object per measurement, with the peer's configuration
(bench/peer.py: the BLAS library mapped, the allocator thresholds).

usage: /usr/bin/python3 bench/torch_step.py DATA_DIR [--model mlp]
       [--batch 32] [--hidden 10,10] [--steps 2000] [--repeats 5] [--threads 1]
"""
import argparse
import gzip
import json
import os
import struct
import time

import peer

if __name__ == "__main__":
    peer.tune_allocator()

import numpy as np  # noqa: E402
import torch  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, split):
    def find(base):
        for name in (base + ".gz", base):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(base)

    x = read_idx(find(split + "-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find(split + "-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def model(hidden, dtype):
    layers, width = [], 784
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 10))  # softmax is fused into the loss
    return torch.nn.Sequential(*layers).to(dtype)


class LSTMNet(torch.nn.Module):
    """examples/lstm.json: the image's 28 rows as 28 time steps."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
        self.out = torch.nn.Linear(128, 10)

    def forward(self, x):
        h, _ = self.lstm(x.view(-1, 28, 28))
        return self.out(h[:, -1])


def cnn():
    """examples/cnn.json, channels first as PyTorch lays them out."""
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 28, 28)),
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 5 * 5, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn", "lstm"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", default="10,10")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    x, y = load(args.data_dir, "train")
    x = x.to(dtype)
    hidden = [int(h) for h in args.hidden.split(",") if h]
    net = {"mlp": lambda: model(hidden, dtype), "cnn": lambda: cnn().to(dtype),
           "lstm": lambda: LSTMNet().to(dtype)}[args.model]()
    lr = 2e-3 if args.model == "lstm" else 1e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0])
    nb = x.shape[0] // args.batch
    batches = [(x[perm[i * args.batch : (i + 1) * args.batch]], y[perm[i * args.batch : (i + 1) * args.batch]]) for i in range(min(nb, args.steps))]

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()

    for xb, yb in batches[:min(200, args.steps)]:  # warm-up
        step(xb, yb)
    config = peer.describe(torch)
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            xb, yb = batches[i % len(batches)]
            step(xb, yb)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        row = {"peer": "pytorch", "model": args.model, "dtype": args.dtype, "batch": args.batch,
               "step_seconds": dt / args.steps, "samples_per_second": args.steps * args.batch / dt,
               "samples_per_cpu_second": args.steps * args.batch / cpu}
        if args.model == "mlp":
            row["hidden"] = hidden
        row.update(config)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
