package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"ringtrain/internal/charts"
)

// plots draws the report's figures and returns their file names by suite.
func (r *runner) plots() (map[string]string, error) {
	files := map[string]string{}
	out := func(name string) string { return filepath.Join(r.cfg.Out, name) }

	if recs := r.find(func(x Record) bool { return x.Suite == "allreduce" }); len(recs) > 0 {
		ch := charts.Chart{Title: "All-reduce bus bandwidth", XLabel: "vector size", YLabel: "busbw (GB/s)", LogX: true, XBytes: true,
			YFromZero: true, HLines: map[string]float64{}}
		for _, impl := range []string{"ringtrain", "ringtrain-tcp", "ringtrain-grpc", "pytorch-gloo"} {
			for _, n := range r.cfg.AllreduceWorkers {
				s := charts.Series{Name: fmt.Sprintf("%s N=%d", impl, n), Dashed: impl != "ringtrain"}
				for _, x := range recs {
					if x.Impl == impl && x.Workers == n {
						s.X, s.Y = append(s.X, float64(x.Bytes)), append(s.Y, x.BusBWGBps)
					}
				}
				ch.Series = append(ch.Series, s)
			}
		}
		for _, c := range r.find(func(x Record) bool { return x.Suite == "ceiling" && x.Impl == "tcp-loopback" }) {
			ch.HLines["TCP loopback ceiling"] = c.BusBWGBps
		}
		if err := charts.Save(out("allreduce_busbw.png"), ch); err != nil {
			return nil, err
		}
		files["allreduce"] = "allreduce_busbw.png"
	}
	scaling := func(suite, file, title, yLabel string, y func(Record) float64) error {
		recs := r.find(func(x Record) bool { return x.Suite == suite })
		if len(recs) == 0 {
			return nil
		}
		// One chart per model, one above the other: models far apart in
		// throughput would flatten each other on one axis.
		var chs []charts.Chart
		chart := func(model string) *charts.Chart {
			for i := range chs {
				if chs[i].Title == title+", "+model {
					return &chs[i]
				}
			}
			chs = append(chs, charts.Chart{Title: title + ", " + model, XLabel: "workers", YLabel: yLabel, YFromZero: true})
			return &chs[len(chs)-1]
		}
		type key struct {
			impl, model string
			batch       int
		}
		var keys []key
		for _, x := range recs {
			k := key{x.Impl, x.Model, x.PerWorkerBatch}
			if suite == "strong" {
				k.batch = x.GlobalBatch
			}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			ch := chart(k.model)
			s := charts.Series{Name: fmt.Sprintf("%s b=%d", k.impl, k.batch), Dashed: k.impl != "ringtrain"}
			for _, x := range recs {
				b := x.PerWorkerBatch
				if suite == "strong" {
					b = x.GlobalBatch
				}
				if x.Impl == k.impl && x.Model == k.model && b == k.batch {
					s.X, s.Y = append(s.X, float64(x.Workers)), append(s.Y, y(x))
					ch.XTicks = append(ch.XTicks, float64(x.Workers))
				}
			}
			ch.Series = append(ch.Series, s)
		}
		if err := charts.Save(out(file), chs...); err != nil {
			return err
		}
		files[suite] = file
		return nil
	}
	if err := scaling("weak", "weak_scaling.png", "Weak scaling (fixed per-worker batch)", "samples/s",
		func(x Record) float64 { return x.SamplesPerSecond }); err != nil {
		return nil, err
	}
	if err := scaling("strong", "strong_scaling.png", "Strong scaling (global batch 256)", "speed-up over 1 worker",
		func(x Record) float64 { return x.Speedup }); err != nil {
		return nil, err
	}
	if err := scaling("tta", "time_to_accuracy.png", "Time to the target test accuracy",
		"seconds", func(x Record) float64 {
			if x.TimeToAccuracy == 0 {
				return math.NaN() // not reached: no point
			}
			return x.TimeToAccuracy
		}); err != nil {
		return nil, err
	}
	return files, nil
}

// Replot draws the plots of an earlier run again from the results.jsonl in
// dir, into dir, without measuring anything: a run's figures after a change
// to the charts. target is the accuracy the run's time-to-accuracy suite
// aimed at (its title says it).
func Replot(dir string, target float64) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "results.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("bench: replot: %w", err)
	}
	cfg := DefaultConfig()
	cfg.Out, cfg.Target, cfg.AllreduceWorkers = dir, target, nil
	r := &runner{cfg: cfg}
	dec := json.NewDecoder(bytes.NewReader(data))
	for line := 1; dec.More(); line++ {
		var rec Record
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("bench: replot: %s record %d: %w", filepath.Join(dir, "results.jsonl"), line, err)
		}
		r.records = append(r.records, rec)
		if rec.Suite == "allreduce" && !slices.Contains(r.cfg.AllreduceWorkers, rec.Workers) {
			r.cfg.AllreduceWorkers = append(r.cfg.AllreduceWorkers, rec.Workers)
		}
	}
	slices.Sort(r.cfg.AllreduceWorkers)
	files, err := r.plots()
	if err != nil {
		return nil, fmt.Errorf("bench: replot: %w", err)
	}
	// The cost model of a run's netsim suite, else of its netsim-overlap.
	for _, m := range [][2]string{{"netsim-train", "ringtrain"}, {"netsim-overlap", "ringtrain-nooverlap"}} {
		recs := r.find(func(x Record) bool { return x.Suite == m[0] && x.Impl == m[1] })
		if len(recs) == 0 {
			continue
		}
		r.cpus = recs[0].CPUs
		if err := r.netsimModel(m[0], m[1]); err != nil {
			return nil, fmt.Errorf("bench: replot: %w", err)
		}
		files["netsim-model"], files["netsim-scaling"] = "netsim_model.png", "netsim_scaling.png"
		break
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, f))
	}
	slices.Sort(paths)
	return paths, nil
}
