import json, sys, re
# usage: model_check.py DIR: the cost model of DIR/netsim.md (fitted on loopback
# runs without overlap) against every shaped run of suite netsim-overlap.
d = sys.argv[1]
md = open(d + "/netsim.md").read()
alpha = float(re.search(r"α = ([\d.]+) µs", md).group(1)) * 1e-6
gamma = float(re.search(r"γ = ([\d.]+) ns", md).group(1)) * 1e-9
S = {"keras": 4 * 8070, "mlp512": 4 * 669706, "cnn": 4 * 225034}
print(f"{d}: alpha {alpha*1e6:.1f} us, gamma {gamma*1e9:.3f} ns/B")
print("| model | N | variant | link | measured | predicted | error |\n|---|---|---|---|---|---|---|")
worst = {}
for l in open(d + "/results.jsonl"):
    r = json.loads(l)
    if r.get("suite") != "netsim-overlap" or "step_ms" not in r or not r.get("link_bits"): continue
    n, B, s = r["workers"], r["link_bits"], r["step_ms"]
    k = max(1, n / r["cpus"])
    by = S[r["model"]] / (2 if r["impl"].endswith("fp16") else 1)
    ar = 2 * (n - 1) * alpha * k + 2 * (n - 1) / n * by * max(gamma * k, 8 / B)
    got = (s["compute"] + s["allreduce"] + s["optimizer"]) / 1e3
    p = (s["compute"] + s["optimizer"]) / 1e3 + ar
    e = (p - got) / got
    v = {"ringtrain-nooverlap": "no overlap", "ringtrain": "overlap", "ringtrain-fp16": "overlap + fp16"}[r["impl"]]
    worst.setdefault(v, []).append(abs(e))
    print(f"| {r['model']} | {n} | {v} | {B/1e9:g} Gb/s | {got*1e3:.2f} ms | {p*1e3:.2f} ms | {100*e:+.1f}% |")
for v, es in worst.items():
    print(f"{v}: {sum(e <= 0.15 for e in es)} of {len(es)} within 15%, worst {100*max(es):.1f}%")
