package coordinator

import (
	"fmt"

	"ringtrain/internal/charts"
)

// plotTraining draws the training loss and the test accuracy per epoch.
func plotTraining(path string, sum *Summary) error {
	var epochs, train, test, acc []float64
	for _, e := range sum.EpochMetrics {
		if e.Epoch == 0 || !e.TrainLoss.Known() || !e.TestLoss.Known() || !e.TestAccuracy.Known() {
			continue // not ended, or not known
		}
		epochs = append(epochs, float64(e.Epoch))
		train, test, acc = append(train, float64(e.TrainLoss)), append(test, float64(e.TestLoss)), append(acc, float64(e.TestAccuracy))
	}
	title := fmt.Sprintf("%d workers, global batch %d", sum.Workers, sum.GlobalBatch)
	return charts.Save(path,
		charts.Chart{Title: "Loss (" + title + ")", XLabel: "epoch", YLabel: "loss",
			Series: []charts.Series{{Name: "training", X: epochs, Y: train}, {Name: "test", X: epochs, Y: test}}},
		charts.Chart{Title: "Test accuracy", XLabel: "epoch", YLabel: "accuracy",
			Series: []charts.Series{{Name: "test accuracy", X: epochs, Y: acc}}})
}
