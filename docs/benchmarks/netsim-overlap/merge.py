import json, sys, statistics
# usage: merge.py a.jsonl b.jsonl c.jsonl: the median over the runs of
# every cell (each run's cell is already the median of 3 rounds).
names = {"keras": "Keras", "mlp512": "784-512-512-10", "cnn": "CNN"}
V = [("ringtrain-nooverlap", "no overlap"), ("ringtrain", "overlap"), ("ringtrain-fp16", "overlap + fp16")]
cells = {}
for path in sys.argv[1:]:
    for l in open(path):
        r = json.loads(l)
        if r.get("suite") != "netsim-overlap" or "step_ms" not in r: continue
        s = r["step_ms"]
        cells.setdefault((r["model"], r["workers"], r["impl"], r.get("link_bits", 0)), []).append((s["compute"] + s["allreduce"] + s["optimizer"], s["allreduce"]))
med = lambda k, i: statistics.median(x[i] for x in cells[k])
print("| model | N | variant | loopback | 1 Gb/s | × loopback | 10 Gb/s | × loopback | all-reduce part, loopback / 1 / 10 Gb/s |")
print("|---|---|---|---|---|---|---|---|---|")
for m in ["keras", "mlp512", "cnn"]:
    for n in [2, 4, 8]:
        for impl, v in V:
            if (m, n, impl, 0) not in cells: continue
            lo, g1, g10 = (med((m, n, impl, l), 0) for l in (0, int(1e9), int(10e9)))
            a = " / ".join(f"{med((m, n, impl, l), 1):.2f}" for l in (0, int(1e9), int(10e9)))
            print(f"| {names[m]} | {n} | {v} | {lo:.2f} | {g1:.2f} | {g1/lo:.2f} | {g10:.2f} | {g10/lo:.2f} | {a} |")
print("\nper run, mlp512 N=4:")
for impl, v in V:
    for l in (0, int(1e9)):
        print(v, l, [f"{x[0]:.2f}/{x[1]:.2f}" for x in cells[("mlp512", 4, impl, l)]])
print("\nfp16 / uncompressed all-reduce part (overlap), median of runs; per run")
for m in ["keras", "mlp512", "cnn"]:
    for n in [2, 4]:
        for l in (0, int(1e9), int(10e9)):
            a, b = cells.get((m, n, "ringtrain", l)), cells.get((m, n, "ringtrain-fp16", l))
            if not a or not b: continue
            rs = [y[1] / x[1] for x, y in zip(a, b)]
            print(f"  {names[m]} N={n} {l/1e9:g}G: {med((m,n,'ringtrain',l),1):.2f} -> {med((m,n,'ringtrain-fp16',l),1):.2f} ({med((m,n,'ringtrain-fp16',l),1)/med((m,n,'ringtrain',l),1):.2f}x); runs " + " ".join(f"{r:.2f}" for r in rs))
