"""PyTorch's side of BenchmarkConv2D (internal/nn): a 3×3 convolution's
forward and backward pass, with the input's gradient, at a given shape and
batch, on a given number of threads. Prints JSON: samples per second, the
median of --repeats timings of --seconds each, after a warm-up as long.

    python3 bench/torch_conv.py --height 13 --channels 32 --filters 64 --batch 32
"""
import argparse, json, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--height", type=int, required=True)
p.add_argument("--channels", type=int, required=True)
p.add_argument("--filters", type=int, required=True)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--seconds", type=float, default=1.0, help="length of each timing (after a warm-up as long)")
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
x = torch.rand(a.batch, a.channels, a.height, a.height, requires_grad=True)
conv = torch.nn.Conv2d(a.channels, a.filters, 3)
dy = torch.randn_like(conv(x))  # a gradient as a real loss gives: dense, not constant


def timed(seconds):
    """Runs passes for about seconds; returns samples per second."""
    n, start = 0, time.perf_counter()
    while True:
        conv(x).backward(dy)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return a.batch * n / elapsed


timed(a.seconds)  # warm-up: allocator, oneDNN's primitive cache, clocks
rates = sorted(timed(a.seconds) for _ in range(a.repeats))
print(json.dumps({"samples_per_second": rates[len(rates) // 2], "torch": torch.__version__, "threads": a.threads}))
