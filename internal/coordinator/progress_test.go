package coordinator

import (
	"strings"
	"testing"

	pb "ringtrain/proto"
)

// TestFinishLineOfARestartThatTrainedNothing: a restarted coordinator
// whose checkpoint held the last step trained nothing; its final line says
// so instead of a duration since the zero time ("2562047h47m16.85s").
func TestFinishLineOfARestartThatTrainedNothing(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, &pb.JobSpec{MaxSteps: 2000, StepsPerEpoch: 625}, 96, "test")
	p.finish(EpochMetrics{TestLoss: 0.28, TestAccuracy: 0.9174})
	if got := out.String(); strings.Contains(got, " in ") || !strings.Contains(got, "before this restart") {
		t.Errorf("final line %q: want no duration, and that the steps ran before the restart", got)
	}
	out.Reset()
	p.start(0)
	p.finish(EpochMetrics{TestLoss: 0.28, TestAccuracy: 0.9174})
	if got := out.String(); !strings.Contains(got, "finished 2000 steps in ") || strings.Contains(got, "restart") {
		t.Errorf("final line %q: want the steps and their time", got)
	}
}
