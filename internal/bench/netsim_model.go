package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"ringtrain/internal/charts"
	"ringtrain/internal/costmodel"
	"ringtrain/internal/nn"
)

// netsimModel fits the cost model to the all-reduce times of the training
// steps of suite and impl on loopback (every model and N), checks it
// against every shaped training run of them, which it did not see, writes
// netsim.md (with the all-reduces timed on shaped links) and draws
// netsim_model.png and netsim_scaling.png.
func (r *runner) netsimModel(suite, impl string) error {
	runs := func(shaped bool) []Record {
		return r.find(func(x Record) bool {
			return x.Suite == suite && x.Impl == impl && x.StepMillis != nil && (x.LinkBits > 0) == shaped
		})
	}
	var fit, check []costmodel.Sample
	for _, x := range runs(false) {
		fit = append(fit, costmodel.Sample{N: x.Workers, Bytes: gradientBytes(x.Model), Seconds: x.StepMillis.Allreduce / 1e3, Cores: float64(r.cpus)})
	}
	for _, x := range r.find(func(x Record) bool { return x.Suite == "netsim-allreduce" }) {
		check = append(check, costmodel.Sample{N: x.Workers, Bytes: float64(x.Bytes), RateBits: float64(x.LinkBits), Seconds: x.Seconds, Cores: float64(r.cpus)})
	}
	ring, err := costmodel.Fit(fit)
	if err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Simulated network: cost model\n\nFitted on the all-reduce part of the %d training runs (suite %s, %s) on loopback: α = %.1f µs a round, γ = %.3f ns a byte (%.2f GB/s a rank); RMS relative error %.1f%% on them.\n\n",
		len(fit), suite, impl, ring.Alpha*1e6, ring.Gamma*1e9, 1/ring.Gamma/1e9, 100*ring.RelError(fit))
	md.WriteString("## Shaped training steps, which the model was not fitted on\n\n| N | model | link | measured | predicted | error |\n|---|---|---|---|---|---|\n")
	steps := map[string]costmodel.Step{} // by model and N, from loopback
	for _, x := range runs(false) {
		steps[fmt.Sprint(x.Model, x.Workers)] = costmodel.Step{Compute: x.StepMillis.Compute / 1e3, Optimizer: x.StepMillis.Optimizer / 1e3,
			GradientBytes: gradientBytes(x.Model)}
	}
	var worstStep float64
	var pts []stepPoint
	for _, x := range runs(true) {
		st, ok := steps[fmt.Sprint(x.Model, x.Workers)]
		if !ok {
			continue
		}
		got := (x.StepMillis.Compute + x.StepMillis.Allreduce + x.StepMillis.Optimizer) / 1e3
		// The shaped run's own compute, so that the check is of the
		// communication model, not of the machine's noise.
		st.Compute, st.Optimizer = x.StepMillis.Compute/1e3, x.StepMillis.Optimizer/1e3
		p := st.Time(ring.Sharing(x.Workers, float64(r.cpus)), x.Workers, float64(x.LinkBits), 0)
		e := (p - got) / got
		worstStep = math.Max(worstStep, math.Abs(e))
		fmt.Fprintf(&md, "| %d | %s | %s | %.2f ms | %.2f ms | %+.1f%% |\n", x.Workers, x.Model, gbps(x.LinkBits), got*1e3, p*1e3, 100*e)
		pts = append(pts, stepPoint{x.Model, x.LinkBits, x.Workers, got, p})
	}
	fmt.Fprintf(&md, "\nLargest error: %.1f%%.\n\n## All-reduce on shaped links (ranks in one process)\n\n| N | size | link | time | busbw | of the link |\n|---|---|---|---|---|---|\n", 100*worstStep)
	for _, s := range check {
		bus := s.Bytes / s.Seconds * 2 * float64(s.N-1) / float64(s.N)
		fmt.Fprintf(&md, "| %d | %s | %s | %.3f ms | %.3f GB/s | %.0f%% |\n", s.N, byteLabel(int(s.Bytes)), gbps(int64(s.RateBits)), s.Seconds*1e3, bus/1e9, 100*bus*8/s.RateBits)
	}
	if err := r.netsimScaling(&md, ring, steps); err != nil {
		return err
	}
	if err := r.netsimFitPlot(pts); err != nil {
		return err
	}
	r.logf("netsim model: α %.1f µs, γ %.3f ns/B; worst error on shaped steps %.1f%%", ring.Alpha*1e6, ring.Gamma*1e9, 100*worstStep)
	return os.WriteFile(filepath.Join(r.cfg.Out, "netsim.md"), []byte(md.String()), 0o644)
}

// gradientBytes is the size of a model's reduced gradient: its float32
// parameters.
func gradientBytes(model string) float64 {
	for _, m := range []benchModel{kerasModel, mlp512, mlp1024, cnnModel} {
		if m.name != model {
			continue
		}
		if net, err := nn.New(m.spec()); err == nil {
			return 4 * float64(net.NumParams())
		}
	}
	return 0
}

// netsimScalingRates are the link rates of the predicted scaling curves.
var netsimScalingRates = []float64{1e9, 10e9, 25e9, 100e9}

// netsimScaling predicts weak-scaling efficiency up to 256 ranks, each
// with cores of its own, from the compute measured at the smallest N, with
// 0.2 ms one-way delay, and plots it.
func (r *runner) netsimScaling(md *strings.Builder, ring costmodel.Ring, steps map[string]costmodel.Step) error {
	const delay = 200e-6
	ns := []int{2, 4, 8, 16, 32, 64, 128, 256}
	var chs []charts.Chart
	md.WriteString("\n## Predicted weak-scaling efficiency, 0.2 ms one-way delay\n\n")
	for _, model := range []string{kerasModel.name, mlp512.name} {
		var st costmodel.Step
		ok := false
		for n := 1; n <= 256 && !ok; n++ { // the smallest N measured
			st, ok = steps[fmt.Sprint(model, n)]
		}
		if !ok {
			continue
		}
		ch := charts.Chart{Title: fmt.Sprintf("%s: predicted weak-scaling efficiency (batch 32 a worker, 0.2 ms delay)", model),
			XLabel: "workers", YLabel: "efficiency", LogX: true, YBounds: [2]float64{0, 1.05}}
		fmt.Fprintf(md, "%s (compute %.2f ms + optimizer %.2f ms a step, %s of gradient):\n\n| link |", model, st.Compute*1e3, st.Optimizer*1e3, byteLabel(int(st.GradientBytes)))
		for _, n := range ns {
			fmt.Fprintf(md, " N=%d |", n)
		}
		md.WriteString("\n|---|" + strings.Repeat("---|", len(ns)) + "\n")
		for _, rate := range netsimScalingRates {
			s := charts.Series{Name: gbps(int64(rate))}
			fmt.Fprintf(md, "| %s |", gbps(int64(rate)))
			for _, n := range ns {
				e := st.Efficiency(ring, n, rate, delay)
				s.X, s.Y = append(s.X, float64(n)), append(s.Y, e)
				fmt.Fprintf(md, " %.2f |", e)
			}
			md.WriteString("\n")
			ch.Series = append(ch.Series, s)
		}
		md.WriteString("\n")
		for _, n := range ns {
			ch.XTicks = append(ch.XTicks, float64(n))
		}
		chs = append(chs, ch)
	}
	if len(chs) == 0 {
		return nil
	}
	return charts.Save(filepath.Join(r.cfg.Out, "netsim_scaling.png"), chs...)
}

// stepPoint is a shaped training run and the model's prediction of it.
type stepPoint struct {
	model               string
	link                int64
	n                   int
	measured, predicted float64
}

// netsimFitPlot draws the shaped training steps against the model's
// predictions, one chart a model.
func (r *runner) netsimFitPlot(pts []stepPoint) error {
	var chs []charts.Chart
	for _, model := range []string{kerasModel.name, mlp512.name} {
		ch := charts.Chart{Title: model + ": step time on shaped links, measured (solid) and predicted (dashed)",
			XLabel: "workers", YLabel: "step (ms)", LogX: true, YFromZero: true}
		for _, rate := range netsimRates {
			m := charts.Series{Name: gbps(rate) + " measured"}
			p := charts.Series{Name: gbps(rate) + " model", Dashed: true}
			for _, x := range pts {
				if x.model == model && x.link == rate {
					m.X, m.Y = append(m.X, float64(x.n)), append(m.Y, x.measured*1e3)
					p.X, p.Y = append(p.X, float64(x.n)), append(p.Y, x.predicted*1e3)
				}
			}
			if len(m.X) > 0 {
				ch.Series = append(ch.Series, m, p)
				ch.XTicks = m.X
			}
		}
		if len(ch.Series) > 0 {
			chs = append(chs, ch)
		}
	}
	if len(chs) == 0 {
		return nil
	}
	return charts.Save(filepath.Join(r.cfg.Out, "netsim_model.png"), chs...)
}

func byteLabel(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.3g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.3g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
