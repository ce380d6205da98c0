package bench

import (
	"context"
	"fmt"
)

// allreduce runs the sweep on every worker count, for ringtrain and the
// peer, after measuring the machine's ceilings.
func (r *runner) allreduce(ctx context.Context) error {
	total := 2 << 30
	if r.cfg.Quick {
		total = 64 << 20
	}
	tcp, err := tcpCeiling(ctx, r.cfg.Exe, total)
	if err != nil {
		return fmt.Errorf("tcp ceiling: %w", err)
	}
	if err := r.add(Record{Suite: "ceiling", Impl: "tcp-loopback", Workers: 2, AlgBWGBps: tcp / 1e9, BusBWGBps: tcp / 1e9,
		Note: "one TCP stream between two processes on loopback"}); err != nil {
		return err
	}
	mem := memcpyCeiling(total * 2)
	if err := r.add(Record{Suite: "ceiling", Impl: "memcpy", Workers: 1, AlgBWGBps: mem / 1e9, BusBWGBps: mem / 1e9,
		Note: "copy between two 64 MiB buffers"}); err != nil {
		return err
	}
	r.logf("ceilings: TCP loopback %.2f GB/s, memcpy %.2f GB/s", tcp/1e9, mem/1e9)
	for _, n := range r.cfg.AllreduceWorkers {
		// ringtrain's default data plane between workers on one host
		// (package ringtcp, frames through shared memory), the same
		// frames on TCP (as between hosts or containers), gRPC's, then
		// the other kinds asked for over the default one.
		planes := []struct{ transport, impl, kind string }{{"shm", "ringtrain", "float64"}, {"tcp", "ringtrain-tcp", "float64"}, {"grpc", "ringtrain-grpc", "float64"}}
		for _, k := range r.cfg.Kinds {
			planes = append(planes, struct{ transport, impl, kind string }{"shm", "ringtrain-" + k, k})
		}
		for _, tr := range planes {
			res, err := runSweep(ctx, r.cfg.Exe, tr.transport, tr.kind, r.cfg.ProfileDir, n, r.cfg.Sizes, r.cfg.Iters, r.cfg.Repeats)
			if err != nil {
				return fmt.Errorf("%d ranks over %s: %w", n, tr.transport, err)
			}
			for _, s := range res {
				if err := r.add(sweepRecord(tr.impl, n, s.Bytes, s.Seconds, r.note(n))); err != nil {
					return err
				}
			}
			r.logf("all-reduce, %d ranks: %s done", n, tr.impl)
		}
		if r.python == "" {
			continue
		}
		out, err := r.runPeer(ctx, "torch_allreduce.py", "--workers", fmt.Sprint(n), "--sizes", joinInts(r.cfg.Sizes),
			"--iters", fmt.Sprint(r.cfg.Iters), "--repeats", fmt.Sprint(r.cfg.Repeats))
		if err != nil {
			return err
		}
		for _, m := range out {
			if err := r.add(sweepRecord("pytorch-gloo", n, int(num(m, "bytes")), num(m, "seconds"), r.note(n))); err != nil {
				return err
			}
		}
		r.logf("all-reduce, %d ranks: gloo done", n)
	}
	return nil
}

// sweepRecord computes the bandwidths of one collective, after
// nccl-tests: algbw = bytes/time, busbw = algbw·2(n−1)/n.
func sweepRecord(impl string, n, bytes int, seconds float64, note string) Record {
	alg := float64(bytes) / seconds / 1e9
	return Record{Suite: "allreduce", Impl: impl, Workers: n, Bytes: bytes, Seconds: seconds,
		AlgBWGBps: alg, BusBWGBps: alg * 2 * float64(n-1) / float64(n), Note: note}
}
