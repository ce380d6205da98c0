package coordinator

import (
	"strings"
	"testing"
	"time"

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

// TestRateCountsFromTheFirstStep: the throughput the progress lines print
// is the training's: the start-up before rank 0's first step (shards and
// state, here 10 s) is not in it, and the final line says how long it was.
func TestRateCountsFromTheFirstStep(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, &pb.JobSpec{MaxSteps: 1000, StepsPerEpoch: 100}, 32, "test")
	p.start(0)
	p.started = p.started.Add(-10 * time.Second)
	p.trained(time.Second) // rank 0's first report: 1 s after its first step
	// 1,000 steps of 32 samples in a little over 1 s, not in 11 s.
	if r := p.rate(999); r < 25000 || r > 32000 {
		t.Errorf("rate %.0f samples/s, want about 32,000", r)
	}
	p.trained(5 * time.Second) // a later report does not move the start
	if r := p.rate(999); r < 25000 {
		t.Errorf("rate %.0f samples/s after a second report, want about 32,000", r)
	}
	p.finish(EpochMetrics{TestLoss: 0.28, TestAccuracy: 0.9174})
	if got := out.String(); !strings.Contains(got, "(after 9") || !strings.Contains(got, "s of start-up") {
		t.Errorf("final line %q: want the start-up's 9 s", got)
	}
}
