"""All-reduce timing of PyTorch's gloo backend on loopback, the peer of
ringtrain's all-reduce sweep.

Starts N processes; for every size (bytes of float64, like ringtrain's
vectors) runs warm-up iterations and then times ITERS all_reduce calls
(SUM, then division by N, as ringtrain's average), and prints one JSON line
per size with the median time over REPEATS, algbw and busbw (nccl-tests
conventions: busbw = algbw * 2(N-1)/N).

usage: python3 bench/torch_allreduce.py --workers 2 [--sizes 4096,65536]
       [--iters 20] [--repeats 5]
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

if __name__ == "__main__":
    peer.tune_allocator()  # the same peer as the training comparisons

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def worker(rank, args, port, results):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=args.workers)
    for size in [int(s) for s in args.sizes.split(",")]:
        t = torch.ones(size // 8, dtype=torch.float64)
        iters = max(1, min(args.iters, (256 << 20) // max(size, 1)))
        for _ in range(3):
            dist.all_reduce(t)
        times = []
        for _ in range(args.repeats):
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                dist.all_reduce(t)
                t.div_(args.workers)
            times.append((time.perf_counter() - t0) / iters)
        if rank == 0:
            med = statistics.median(times)
            algbw = size / med / 1e9
            results.put({"peer": "gloo", "version": torch.__version__, "workers": args.workers, "bytes": size,
                         "seconds": med, "algbw_gbps": algbw,
                         "busbw_gbps": algbw * 2 * (args.workers - 1) / args.workers})
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", default=",".join(str(4 ** k * 1024) for k in range(9)))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    mp.spawn(worker, args=(args, port, results), nprocs=args.workers, join=True)
    while not results.empty():
        print(json.dumps(results.get()), flush=True)


if __name__ == "__main__":
    main()
