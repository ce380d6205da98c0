"""PyTorch DistributedDataParallel (gloo) on the Keras MNIST example, for
comparison with ringtrain's distributed training.

Starts N processes on loopback, each training Dense(10, relu) ->
Dense(10, relu) -> Dense(10) with softmax cross-entropy and Adam (Keras
defaults) on its own 1/N shard of real MNIST at the given per-worker batch,
for one epoch (or --max-steps), then evaluates on the test set. Prints one
JSON object with the same fields as ringtrain's summary where they apply.

With --target-accuracy the test set is evaluated after every epoch and
seconds_to_target is the training time (evaluations excluded) until the
accuracy first reached the target. --scale-lr applies the linear scaling
rule with a linear warm-up over --warmup-epochs, as ringtrain's -scale-lr.

--model cnn trains examples/cnn.json's model instead (bench/torch_step.py).
The peer runs as bench/peer.py configures it (allocator thresholds raised)
and the result names the BLAS library it mapped.

usage: /usr/bin/python3 bench/torch_ddp.py DATA_DIR --workers 2 [--batch 32]
       [--epochs 1] [--max-steps 0] [--model mlp] [--hidden 10,10]
       [--threads 1] [--lr 0.001] [--scale-lr] [--warmup-epochs 0]
       [--target-accuracy 0]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

if __name__ == "__main__":
    peer.tune_allocator()

from torch_step import cnn, load, model  # noqa: E402


def evaluate(net, x, y):
    with torch.no_grad():
        out = net(x)
        loss = torch.nn.functional.cross_entropy(out, y).item()
        acc = (out.argmax(1) == y).float().mean().item()
    return loss, acc


def worker(rank, args, port, results):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.workers)
    torch.manual_seed(args.seed)
    x, y = load(args.data_dir, "train")
    tx, ty = load(args.data_dir, "t10k")
    hidden = [int(h) for h in args.hidden.split(",") if h]
    net = torch.nn.parallel.DistributedDataParallel(cnn() if args.model == "cnn" else model(hidden, torch.float32))
    peak = args.lr * (args.workers if args.scale_lr else 1)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(x.shape[0], generator=g)
    shard = perm[rank :: args.workers]
    steps_per_epoch = len(shard) // args.batch
    total = args.epochs * steps_per_epoch
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = round(args.warmup_epochs * steps_per_epoch) if args.scale_lr else 0
    dist.barrier()
    start = time.perf_counter()
    evaluating = 0.0  # time spent evaluating, excluded from the training time
    reached = None
    epochs = []
    step = 0
    for epoch in range(args.epochs):
        if step == total:
            break
        order = shard[torch.randperm(len(shard), generator=g)]
        for i in range(steps_per_epoch):
            if step == total:
                break
            lr = args.lr + (peak - args.lr) * step / warmup if step < warmup else peak
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[i * args.batch : (i + 1) * args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
        if args.target_accuracy:
            t0 = time.perf_counter()
            _, acc = evaluate(net.module, tx, ty)
            evaluating += time.perf_counter() - t0
            trained = time.perf_counter() - start - evaluating
            epochs.append({"epoch": epoch + 1, "wall_seconds": trained, "test_accuracy": acc})
            if acc >= args.target_accuracy and reached is None:
                reached = trained
    wall = time.perf_counter() - start - evaluating
    test_loss, test_acc = evaluate(net.module, tx, ty)
    if rank == 0:
        results.put({"peer": "pytorch-ddp-gloo", "version": torch.__version__, "workers": args.workers,
                     "per_worker_batch": args.batch, "global_batch": args.batch * args.workers,
                     "steps": step, "wall_seconds": wall,
                     "samples_per_second": step * args.batch * args.workers / wall,
                     "test_accuracy": test_acc, "test_loss": test_loss, "final_loss": loss.item(),
                     "seconds_to_target": reached, "epoch_metrics": epochs, "model": args.model,
                     **peer.describe(torch)})
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    ap.add_argument("--hidden", default="10,10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-accuracy", type=float, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scale-lr", action="store_true")
    ap.add_argument("--warmup-epochs", type=float, default=0)
    args = ap.parse_args()
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    mp.spawn(worker, args=(args, port, results), nprocs=args.workers, join=True)
    print(json.dumps(results.get()), flush=True)


if __name__ == "__main__":
    main()
