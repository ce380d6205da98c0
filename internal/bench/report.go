package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report writes report.md and the plots.
func (r *runner) report() error {
	files, err := r.plots()
	if err != nil {
		return fmt.Errorf("bench: plots: %w", err)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# ringtrain benchmark report\n\n")
	if r.cfg.Quick {
		w("**A quick run (`-quick`): tiny sizes and a few steps, to check that the suite works. It measures nothing: ")
		w("no figure below is a result, and the targets are not judged.**\n\n")
	}
	w("- Date: %s; suite took %v\n", r.started.UTC().Format(time.RFC3339), time.Since(r.started).Round(time.Second))
	w("- Machine: %s, %d cores, %s/%s, %s\n", cpuModel(), r.cpus, runtime.GOOS, runtime.GOARCH, runtime.Version())
	if r.python != "" {
		w("- Peer: %s, run in the same invocation\n", r.peerNote)
	} else {
		w("- Peer: skipped: %s\n", r.peerNote)
	}
	w("- Command: `%s`\n", strings.Join(os.Args, " "))
	w("- Rows marked † ran more processes than the machine has cores: they measure contention, not scaling.\n")
	w("- Raw measurements: `results.jsonl` (one JSON object per line).\n\n")
	r.allreduceSection(w, files)
	r.kindsSection(w)
	r.netsimCompressionSection(w)
	r.scalingSection(w, files, "weak")
	r.scalingSection(w, files, "strong")
	r.ttaSection(w, files)
	r.targetsSection(w)
	return os.WriteFile(filepath.Join(r.cfg.Out, "report.md"), []byte(b.String()), 0o644)
}

type writer func(format string, args ...any)

func (r *runner) dagger(workers int) string {
	if workers > r.cpus {
		return "†"
	}
	return ""
}

func (r *runner) one(pred func(Record) bool) (Record, bool) {
	recs := r.find(pred)
	if len(recs) == 0 {
		return Record{}, false
	}
	return recs[0], true
}

func (r *runner) allreduceSection(w writer, files map[string]string) {
	recs := r.find(func(x Record) bool { return x.Suite == "allreduce" })
	if len(recs) == 0 {
		return
	}
	w("## All-reduce sweep\n\n")
	w("Ring all-reduce (average) of float64 vectors between N processes on one host, over the workers' default data plane there (package ringtcp: a TCP connection per neighbour, the frames through a shared-memory ring beside it); the TCP columns send the same frames on the connection, as workers on different hosts or in different containers do (the gRPC plane's rows, ringtrain-grpc, are in results.jsonl); gloo uses TCP. Median time of %d repeats. ", r.cfg.Repeats)
	w("algbw = bytes/time, busbw = algbw·2(N−1)/N (nccl-tests conventions).\n\n")
	tcp, _ := r.one(func(x Record) bool { return x.Impl == "tcp-loopback" })
	mem, _ := r.one(func(x Record) bool { return x.Impl == "memcpy" })
	w("Ceilings: one loopback TCP stream between two processes **%.2f GB/s**; memory copy **%.2f GB/s**. ", tcp.BusBWGBps, mem.BusBWGBps)
	w("The %% column is ringtrain's busbw as a fraction of the TCP ceiling.\n\n")
	for _, n := range r.cfg.AllreduceWorkers {
		w("### N = %d%s\n\n", n, r.dagger(n))
		w("| size | ringtrain time | busbw GB/s | %% of TCP | TCP only busbw GB/s | gloo time | gloo busbw GB/s | busbw ratio | TCP only ratio |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, size := range r.cfg.Sizes {
			ours, ok := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "ringtrain" && x.Workers == n && x.Bytes == size
			})
			if !ok {
				continue
			}
			row := fmt.Sprintf("| %s | %s | %.3f | %.0f%% |", byteSize(size), duration(ours.Seconds), ours.BusBWGBps, 100*ours.BusBWGBps/tcp.BusBWGBps)
			onlyTCP, okTCP := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "ringtrain-tcp" && x.Workers == n && x.Bytes == size
			})
			if okTCP {
				row += fmt.Sprintf(" %.3f |", onlyTCP.BusBWGBps)
			} else {
				row += " – |"
			}
			if peer, ok := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "pytorch-gloo" && x.Workers == n && x.Bytes == size
			}); ok {
				row += fmt.Sprintf(" %s | %.3f | %.2f× |", duration(peer.Seconds), peer.BusBWGBps, ours.BusBWGBps/peer.BusBWGBps)
				if okTCP {
					row += fmt.Sprintf(" %.2f× |", onlyTCP.BusBWGBps/peer.BusBWGBps)
				} else {
					row += " – |"
				}
			} else {
				row += " – | – | – | – |"
			}
			w("%s\n", row)
		}
		w("\n")
	}
	if f, ok := files["allreduce"]; ok {
		w("![all-reduce bus bandwidth](%s)\n\n", f)
	}
}

func (r *runner) scalingSection(w writer, files map[string]string, suite string) {
	recs := r.find(func(x Record) bool { return x.Suite == suite && x.Impl == "ringtrain" })
	if len(recs) == 0 {
		return
	}
	if suite == "weak" {
		w("## Weak scaling\n\nFixed per-worker batch; N worker processes on this machine. Efficiency = throughput at N / (N × throughput at 1). PyTorch's processes keep one intra-op thread each, its OpenBLAS its default threads (the faster configuration on this machine: intra-op threads beside OpenBLAS's made one process 3–4× slower). ")
		w("Step time split from rank 0: compute (batch gathering, forward, backward), all-reduce, optimiser.\n\n")
		w("| model | batch/worker | N | ringtrain samples/s | efficiency | compute / all-reduce / optimiser ms | PyTorch DDP samples/s | efficiency | ratio |\n|---|---|---|---|---|---|---|---|---|\n")
	} else {
		w("## Strong scaling\n\nGlobal batch 256 split over N workers. Time per epoch (%d samples) extrapolated from the measured throughput.\n\n", 60000/256*256)
		w("| model | N | batch/worker | ringtrain s/epoch | speed-up | PyTorch DDP s/epoch | speed-up | ratio |\n|---|---|---|---|---|---|---|---|\n")
	}
	for _, x := range recs {
		peer, ok := r.one(func(y Record) bool {
			return y.Suite == suite && y.Impl == "pytorch-gloo" && y.Model == x.Model && y.Workers == x.Workers && y.PerWorkerBatch == x.PerWorkerBatch
		})
		if suite == "weak" {
			split := "–"
			if s := x.StepMillis; s != nil {
				split = fmt.Sprintf("%.3f / %.3f / %.3f", s.Compute, s.Allreduce, s.Optimizer)
			}
			row := fmt.Sprintf("| %s | %d | %d%s | %.0f | %.2f | %s |", x.Model, x.PerWorkerBatch, x.Workers, r.dagger(x.Workers),
				x.SamplesPerSecond, x.Efficiency, split)
			if ok {
				row += fmt.Sprintf(" %.0f | %.2f | %.2f× |", peer.SamplesPerSecond, peer.Efficiency, x.SamplesPerSecond/peer.SamplesPerSecond)
			} else {
				row += " – | – | – |"
			}
			w("%s\n", row)
			continue
		}
		row := fmt.Sprintf("| %s | %d%s | %d | %.2f | %.2f |", x.Model, x.Workers, r.dagger(x.Workers), x.PerWorkerBatch, x.EpochSeconds, x.Speedup)
		if ok {
			row += fmt.Sprintf(" %.2f | %.2f | %.2f× |", peer.EpochSeconds, peer.Speedup, peer.EpochSeconds/x.EpochSeconds)
		} else {
			row += " – | – | – |"
		}
		w("%s\n", row)
	}
	w("\n")
	if f, ok := files[suite]; ok {
		w("![%s scaling](%s)\n\n", suite, f)
	}
}

func (r *runner) ttaSection(w writer, files map[string]string) {
	recs := r.find(func(x Record) bool { return x.Suite == "tta" && x.Impl == "ringtrain" })
	if len(recs) == 0 {
		return
	}
	w("## Time to test accuracy\n\nPer-worker batch 32, linear scaling rule with one epoch of warm-up above one worker; test set evaluated after every epoch (evaluation time excluded). At most %d epochs.\n\n", r.cfg.TTAEpochs)
	var models []string
	for _, x := range recs {
		if !slices.Contains(models, x.Model) {
			models = append(models, x.Model)
		}
	}
	for _, model := range models {
		w("### %s, to %.3g\n\n", modelTitle(model), r.ttaTarget(recs, model))
		w("| N | global batch | ringtrain seconds | final accuracy | PyTorch DDP seconds | final accuracy | ratio |\n|---|---|---|---|---|---|---|\n")
		for _, x := range recs {
			if x.Model != model {
				continue
			}
			peer, ok := r.ttaPeer(x)
			row := fmt.Sprintf("| %d%s | %d | %s | %.4f |", x.Workers, r.dagger(x.Workers), x.GlobalBatch, ttaCell(x.TimeToAccuracy), x.Accuracy)
			if ok {
				ratio := "–"
				if x.TimeToAccuracy > 0 && peer.TimeToAccuracy > 0 {
					ratio = fmt.Sprintf("%.2f× faster", peer.TimeToAccuracy/x.TimeToAccuracy)
				}
				row += fmt.Sprintf(" %s | %.4f | %s |", ttaCell(peer.TimeToAccuracy), peer.Accuracy, ratio)
			} else {
				row += " – | – | – |"
			}
			w("%s\n", row)
		}
		w("\n")
	}
	if f, ok := files["tta"]; ok {
		w("![time to accuracy](%s)\n\n", f)
	}
}

// ttaPeer is the peer's run of x's model and worker count.
func (r *runner) ttaPeer(x Record) (Record, bool) {
	return r.one(func(y Record) bool {
		return y.Suite == "tta" && y.Impl == "pytorch-gloo" && y.Workers == x.Workers && y.Model == x.Model
	})
}

// ttaTarget is the accuracy model's runs had to reach (Config.Target in
// results written before records carried it).
func (r *runner) ttaTarget(recs []Record, model string) float64 {
	for _, x := range recs {
		if x.Model == model && x.Target > 0 {
			return x.Target
		}
	}
	return r.cfg.Target
}

// modelTitle names a benchmark model in a report.
func modelTitle(name string) string {
	switch name {
	case kerasModel.name:
		return "Keras example"
	case mlp512.name:
		return "784-512-512-10"
	case mlp1024.name:
		return "784-1024-1024-10"
	case cnnModel.name:
		return "CNN (examples/cnn.json)"
	}
	return name
}

func ttaCell(s float64) string {
	if s == 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.2f", s)
}

// targetsSection checks the project's targets against the peer.
func (r *runner) targetsSection(w writer) {
	if r.cfg.Quick {
		w("## Targets\n\nNot checked: a quick run (`-quick`) measures nothing; run the full suite to judge them.\n")
		return
	}
	if r.python == "" {
		w("## Targets\n\nNot checked: the PyTorch peer was skipped.\n")
		return
	}
	w("## Targets against PyTorch DDP (gloo), same machine, same run\n\n| target | result |\n|---|---|\n")
	var misses []string
	compared := 0
	for _, n := range r.cfg.AllreduceWorkers {
		for _, size := range r.cfg.Sizes {
			ours, ok1 := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "ringtrain" && x.Workers == n && x.Bytes == size
			})
			peer, ok2 := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "pytorch-gloo" && x.Workers == n && x.Bytes == size
			})
			if !ok1 || !ok2 {
				continue
			}
			compared++
			if size >= 64<<10 && ours.BusBWGBps < peer.BusBWGBps {
				misses = append(misses, fmt.Sprintf("busbw N=%d %s: %.3f < %.3f GB/s", n, byteSize(size), ours.BusBWGBps, peer.BusBWGBps))
			}
			if size <= 16<<10 && ours.Seconds > peer.Seconds {
				misses = append(misses, fmt.Sprintf("latency N=%d %s: %s > %s", n, byteSize(size), duration(ours.Seconds), duration(peer.Seconds)))
			}
		}
	}
	w("| all-reduce busbw ≥ gloo from 64 KiB, latency ≤ gloo up to 16 KiB | %s |\n", verdict(compared, misses))
	misses, compared = nil, 0
	for _, x := range r.find(func(x Record) bool {
		return x.Suite == "weak" && x.Impl == "ringtrain" && x.Model == "keras" && x.PerWorkerBatch == 32 && x.Workers <= 4
	}) {
		peer, ok := r.one(func(y Record) bool {
			return y.Suite == "weak" && y.Impl == "pytorch-gloo" && y.Model == "keras" && y.PerWorkerBatch == 32 && y.Workers == x.Workers
		})
		if !ok {
			continue
		}
		compared++
		if x.SamplesPerSecond < 2*peer.SamplesPerSecond {
			misses = append(misses, fmt.Sprintf("N=%d: %.2f×", x.Workers, x.SamplesPerSecond/peer.SamplesPerSecond))
		}
	}
	w("| Keras example throughput ≥ 2× DDP at N = 1, 2, 4 (batch 32 per worker) | %s |\n", verdict(compared, misses))
	misses, compared = nil, 0
	tta := r.find(func(x Record) bool { return x.Suite == "tta" && x.Impl == "ringtrain" })
	for _, x := range tta {
		peer, ok := r.ttaPeer(x)
		if !ok {
			continue
		}
		compared++
		if x.TimeToAccuracy == 0 || (peer.TimeToAccuracy > 0 && x.TimeToAccuracy >= peer.TimeToAccuracy) {
			misses = append(misses, fmt.Sprintf("%s N=%d: %s s vs %s s", x.Model, x.Workers, ttaCell(x.TimeToAccuracy), ttaCell(peer.TimeToAccuracy)))
		}
	}
	w("| time to the target accuracy below DDP for every model and N | %s |\n", verdict(compared, misses))
}

// verdict judges a target from the comparisons made (compared) and those
// that missed it: a target with nothing to compare in this run (its suite
// did not run) is not judged.
func verdict(compared int, misses []string) string {
	switch {
	case compared == 0:
		return "not measured in this run (its suite did not run)"
	case len(misses) == 0:
		return "met"
	}
	return "**missed**: " + strings.Join(misses, "; ")
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func duration(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.1f µs", s*1e6)
}

// cpuModel reads the processor's name on Linux.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
