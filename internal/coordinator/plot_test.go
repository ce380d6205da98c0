package coordinator

import (
	"math"
	"testing"
)

// TestShortJobPlotsEveryStep: a job shorter than an epoch plots its loss at
// every step and its evaluation where it happened, against epochs, with an
// accuracy axis bounded by [0, 1]; a long job's loss curve is thinned to
// means of runs of steps.
func TestShortJobPlotsEveryStep(t *testing.T) {
	const spe = 937
	losses := make([]float64, 300)
	for i := range losses {
		losses[i] = 2.3 * math.Exp(-float64(i)/200)
	}
	sum := &Summary{Workers: 2, GlobalBatch: 64, StepsPerEpoch: spe,
		EpochMetrics: []EpochMetrics{{Epoch: 1, Step: 300, TrainLoss: 1, TestLoss: 0.52, TestAccuracy: 0.8546}}}
	cs := trainingCharts(sum, losses)
	if n := len(cs[0].Series[0].X); n != 300 {
		t.Errorf("loss curve has %d points, want one per step (300)", n)
	}
	acc := cs[1]
	if len(acc.Series[0].X) != 1 || math.Abs(acc.Series[0].X[0]-300.0/spe) > 1e-12 || acc.YBounds != [2]float64{0, 1} {
		t.Errorf("accuracy chart: x %v, bounds %v; want one point at %v epochs, bounds [0 1]", acc.Series[0].X, acc.YBounds, 300.0/spe)
	}
	long := trainingCharts(sum, make([]float64, 10*spe))
	if n := len(long[0].Series[0].X); n > maxLossPoints {
		t.Errorf("long job: %d loss points, want at most %d", n, maxLossPoints)
	}
}
