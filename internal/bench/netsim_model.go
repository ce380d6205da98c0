package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"ringtrain/internal/charts"
	"ringtrain/internal/costmodel"
)

// netsimModel fits the cost model to the all-reduce times of the training
// steps on loopback (every model and N), checks it against what it did not
// see (every shaped training run, and the all-reduces timed on shaped
// links), writes netsim.md and draws netsim_model.png and
// netsim_scaling.png.
func (r *runner) netsimModel() error {
	var fit, check []costmodel.Sample
	for _, x := range r.find(func(x Record) bool { return x.Suite == "netsim-train" && x.LinkBits == 0 }) {
		fit = append(fit, costmodel.Sample{N: x.Workers, Bytes: gradientBytes(x.Model), Seconds: x.StepMillis.Allreduce / 1e3})
	}
	for _, x := range r.find(func(x Record) bool { return x.Suite == "netsim-allreduce" }) {
		check = append(check, costmodel.Sample{N: x.Workers, Bytes: float64(x.Bytes), RateBits: float64(x.LinkBits), Seconds: x.Seconds})
	}
	ring, err := costmodel.Fit(fit)
	if err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Simulated network: cost model\n\nFitted on the all-reduce part of the %d training runs on loopback: α = %.1f µs a round, γ = %.3f ns a byte (%.2f GB/s a rank); RMS relative error %.1f%% on them.\n\n",
		len(fit), ring.Alpha*1e6, ring.Gamma*1e9, 1/ring.Gamma/1e9, 100*ring.RelError(fit))
	md.WriteString("## Checked on what it was not fitted on\n\n| what | N | size or model | link | measured | predicted | error |\n|---|---|---|---|---|---|---|\n")
	var worst float64
	for _, s := range check {
		p := ring.AllReduce(s.N, s.Bytes, s.RateBits, 0)
		e := (p - s.Seconds) / s.Seconds
		if s.Bytes >= 256<<10 {
			worst = math.Max(worst, math.Abs(e))
		}
		fmt.Fprintf(&md, "| all-reduce | %d | %s | %s | %.3f ms | %.3f ms | %+.1f%% |\n", s.N, byteLabel(int(s.Bytes)), gbps(int64(s.RateBits)), s.Seconds*1e3, p*1e3, 100*e)
	}
	steps := map[string]costmodel.Step{} // by model and N, from loopback
	for _, x := range r.find(func(x Record) bool { return x.Suite == "netsim-train" && x.LinkBits == 0 }) {
		steps[fmt.Sprint(x.Model, x.Workers)] = costmodel.Step{Compute: x.StepMillis.Compute / 1e3, Optimizer: x.StepMillis.Optimizer / 1e3,
			GradientBytes: gradientBytes(x.Model)}
	}
	var worstStep float64
	for _, x := range r.find(func(x Record) bool { return x.Suite == "netsim-train" && x.LinkBits > 0 }) {
		st, ok := steps[fmt.Sprint(x.Model, x.Workers)]
		if !ok {
			continue
		}
		got := (x.StepMillis.Compute + x.StepMillis.Allreduce + x.StepMillis.Optimizer) / 1e3
		// The shaped run's own compute, so that the check is of the
		// communication model, not of the machine's noise.
		st.Compute, st.Optimizer = x.StepMillis.Compute/1e3, x.StepMillis.Optimizer/1e3
		p := st.Time(ring, x.Workers, float64(x.LinkBits), 0)
		e := (p - got) / got
		worstStep = math.Max(worstStep, math.Abs(e))
		fmt.Fprintf(&md, "| step | %d | %s | %s | %.2f ms | %.2f ms | %+.1f%% |\n", x.Workers, x.Model, gbps(x.LinkBits), got*1e3, p*1e3, 100*e)
	}
	fmt.Fprintf(&md, "\nLargest error: %.1f%% on shaped training steps; %.1f%% on the all-reduces of 256 KiB and more timed on shaped links (ranks in one process, whose latency is below the processes' α).\n", 100*worstStep, 100*worst)
	if err := r.netsimScaling(&md, ring, steps); err != nil {
		return err
	}
	if err := r.netsimFitPlot(ring, check); err != nil {
		return err
	}
	r.logf("netsim model: α %.1f µs, γ %.3f ns/B; worst error %.1f%% (shaped steps), %.1f%% (shaped all-reduces ≥ 256 KiB)", ring.Alpha*1e6, ring.Gamma*1e9, 100*worstStep, 100*worst)
	return os.WriteFile(filepath.Join(r.cfg.Out, "netsim.md"), []byte(md.String()), 0o644)
}

// gradientBytes is the size of a model's reduced gradient: float32
// parameters of dense layers from 784 inputs to 10 outputs.
func gradientBytes(model string) float64 {
	for _, m := range []benchModel{kerasModel, mlp512, mlp1024} {
		if m.name != model {
			continue
		}
		in, n := 784, 0
		for _, h := range append(append([]int{}, m.hidden...), 10) {
			n += in*h + h
			in = h
		}
		return 4 * float64(n)
	}
	return 0
}

// netsimScalingRates are the link rates of the predicted scaling curves.
var netsimScalingRates = []float64{1e9, 10e9, 25e9, 100e9}

// netsimScaling predicts weak-scaling efficiency up to 256 ranks from the
// compute measured at the smallest N, with 0.2 ms one-way delay, and plots
// it.
func (r *runner) netsimScaling(md *strings.Builder, ring costmodel.Ring, steps map[string]costmodel.Step) error {
	const delay = 200e-6
	ns := []int{2, 4, 8, 16, 32, 64, 128, 256}
	var chs []charts.Chart
	md.WriteString("\n## Predicted weak-scaling efficiency, 0.2 ms one-way delay\n\n")
	for _, model := range []string{kerasModel.name, mlp512.name} {
		st, ok := steps[fmt.Sprint(model, r.cfg.AllreduceWorkers[0])]
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

// netsimFitPlot draws the all-reduces the model was not fitted on against
// its predictions.
func (r *runner) netsimFitPlot(ring costmodel.Ring, check []costmodel.Sample) error {
	ch := charts.Chart{Title: "All-reduce on shaped links: measured (points) and predicted (dashed), not fitted on",
		XLabel: "vector size", YLabel: "time (ms)", LogX: true, XBytes: true, YFromZero: true}
	byN := map[string]*[2]charts.Series{}
	var keys []string
	for _, s := range check {
		k := fmt.Sprintf("N=%d %s", s.N, gbps(int64(s.RateBits)))
		if byN[k] == nil {
			byN[k] = &[2]charts.Series{{Name: k + " measured"}, {Name: k + " model", Dashed: true, LineOnly: true}}
			keys = append(keys, k)
		}
		p := byN[k]
		p[0].X, p[0].Y = append(p[0].X, s.Bytes), append(p[0].Y, s.Seconds*1e3)
		p[1].X, p[1].Y = append(p[1].X, s.Bytes), append(p[1].Y, ring.AllReduce(s.N, s.Bytes, s.RateBits, 0)*1e3)
	}
	for _, k := range keys {
		ch.Series = append(ch.Series, byN[k][0], byN[k][1])
	}
	if len(ch.Series) == 0 {
		return nil
	}
	return charts.Save(filepath.Join(r.cfg.Out, "netsim_model.png"), ch)
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
