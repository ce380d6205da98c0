"""Training throughput of PyTorch on the Keras MNIST example, for comparison.

Trains Dense(10, relu) -> Dense(10, relu) -> Dense(10, softmax) on real MNIST
with Adam (Keras defaults) and sparse categorical cross-entropy, the way the
Go benchmark BenchmarkTrainStep does: one optimiser step per mini-batch of
already-loaded tensors. Prints one JSON object per measurement.

usage: python3 bench/torch_step.py DATA_DIR [--batch 32] [--hidden 10,10]
       [--steps 2000] [--repeats 5] [--threads 1]
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
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
    net = model(hidden, dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0])
    nb = x.shape[0] // args.batch
    batches = [(x[perm[i * args.batch : (i + 1) * args.batch]], y[perm[i * args.batch : (i + 1) * args.batch]]) for i in range(min(nb, args.steps))]

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()

    for xb, yb in batches[:200]:  # warm-up
        step(xb, yb)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for i in range(args.steps):
            xb, yb = batches[i % len(batches)]
            step(xb, yb)
        dt = time.perf_counter() - t0
        print(json.dumps({"peer": "pytorch", "version": torch.__version__, "threads": args.threads,
                          "dtype": args.dtype, "hidden": hidden, "batch": args.batch,
                          "step_seconds": dt / args.steps,
                          "samples_per_second": args.steps * args.batch / dt}), flush=True)


if __name__ == "__main__":
    main()
