package coordinator

import (
	"fmt"
	"strings"

	"ringtrain/internal/charts"
)

// maxLossPoints bounds the points of the training loss curve: longer jobs
// plot the mean loss of runs of consecutive steps.
const maxLossPoints = 300

// plotTraining draws the training loss of every step (or the mean of runs
// of steps) and the held-out loss and accuracy of every evaluation, against
// epochs: a job shorter than an epoch still draws curves, not one point.
// losses holds the training loss of each step of the job, NaN where
// unknown.
func plotTraining(path string, sum *Summary, losses []float64) error {
	return charts.Save(path, trainingCharts(sum, losses)...)
}

// trainingCharts are the charts plotTraining draws.
func trainingCharts(sum *Summary, losses []float64) []charts.Chart {
	spe := float64(sum.StepsPerEpoch)
	var lx, ly []float64
	bin := (len(losses) + maxLossPoints - 1) / maxLossPoints
	for start := 0; start < len(losses); start += max(bin, 1) {
		end := min(start+bin, len(losses))
		var total float64
		n := 0
		for _, l := range losses[start:end] {
			if Metric(l).Known() {
				total += l
				n++
			}
		}
		if n > 0 {
			lx, ly = append(lx, float64(end)/spe), append(ly, total/float64(n))
		}
	}
	var ex, eloss, eacc []float64
	for _, e := range sum.EpochMetrics {
		if e.Epoch == 0 || !e.TestLoss.Known() || !e.TestAccuracy.Known() {
			continue // not evaluated
		}
		ex = append(ex, float64(e.Step)/spe)
		eloss, eacc = append(eloss, float64(e.TestLoss)), append(eacc, float64(e.TestAccuracy))
	}
	held := "test"
	if sum.Folds > 1 {
		held = "validation"
	}
	training := "training, every step"
	if bin > 1 {
		training = fmt.Sprintf("training, mean of %d steps", bin)
	}
	span := [2]float64{0, float64(len(losses)) / spe}
	title := fmt.Sprintf("%d workers, global batch %d, %d steps", sum.Workers, sum.GlobalBatch, len(losses))
	return []charts.Chart{
		{Title: "Loss (" + title + ")", XLabel: "epoch", YLabel: "loss", XRange: span, YFromZero: true,
			Series: []charts.Series{{Name: training, X: lx, Y: ly, LineOnly: true}, {Name: held, X: ex, Y: eloss}}},
		{Title: strings.ToUpper(held[:1]) + held[1:] + " accuracy", XLabel: "epoch", YLabel: "accuracy", XRange: span, YBounds: [2]float64{0, 1},
			Series: []charts.Series{{Name: held + " accuracy", X: ex, Y: eacc}}},
	}
}
