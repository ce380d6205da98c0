package bench

import (
	"fmt"
	"math"
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
		for _, impl := range []string{"ringtrain", "pytorch-gloo"} {
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
		ch := charts.Chart{Title: title, XLabel: "workers", YLabel: yLabel, YFromZero: true}
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
			s := charts.Series{Name: fmt.Sprintf("%s %s b=%d", k.impl, k.model, k.batch), Dashed: k.impl != "ringtrain"}
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
		if err := charts.Save(out(file), ch); err != nil {
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
	if err := scaling("tta", "time_to_accuracy.png", fmt.Sprintf("Time to %.2f test accuracy (Keras example)", r.cfg.Target),
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
