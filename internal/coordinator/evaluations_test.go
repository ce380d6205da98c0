package coordinator

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a progress display the test reads after the job.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// TestEvaluationsAfterTraining trains the same three epochs with each
// epoch evaluated as it ends (EvalDuring) and after the training
// (EvalAfter): the figures are the same, and with EvalAfter they appear
// after the last epoch's steps. (With EvalDuring they appear when the
// evaluation ends, which a loaded machine may delay past the next epoch.)
func TestEvaluationsAfterTraining(t *testing.T) {
	t.Parallel() // its jobs mostly wait on gRPC and gossip
	const epochs = 3
	run := func(when string) (*Summary, []string) {
		cfg := testConfig(t, 1)
		cfg.Epochs, cfg.Batch, cfg.Evaluations = epochs, 64, when
		progress := &lockedBuffer{}
		cfg.Progress = progress
		sum, err, werrs := runJob(t, cfg, workerIDs(1)...)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if werrs[0] != nil {
			t.Fatalf("%s: worker: %v", when, werrs[0])
		}
		return sum, progress.lines()
	}
	during, _ := run(EvalDuring)
	after, afterLines := run(EvalAfter)
	if len(during.EpochMetrics) != epochs || len(after.EpochMetrics) != epochs {
		t.Fatalf("epoch metrics: %d during, %d after; want %d", len(during.EpochMetrics), len(after.EpochMetrics), epochs)
	}
	for i, d := range during.EpochMetrics {
		a := after.EpochMetrics[i]
		if !d.TestAccuracy.Known() || d.TestLoss != a.TestLoss || d.TestAccuracy != a.TestAccuracy || d.Step != a.Step || d.Epoch != a.Epoch {
			t.Errorf("epoch %d: during %+v, after %+v", i+1, d, a)
		}
	}
	// Where the first epoch's evaluation appears among the progress
	// lines, and the last epoch's first step.
	firstDone := func(lines []string) (done, lastEpochStep int) {
		done, lastEpochStep = -1, -1
		for i, l := range lines {
			if done < 0 && strings.HasPrefix(l, "epoch 1/3 done") {
				done = i
			}
			if strings.HasPrefix(l, "epoch 3/3 step") && lastEpochStep < 0 {
				lastEpochStep = i
			}
		}
		return done, lastEpochStep
	}
	if done, last := firstDone(afterLines); done < 0 || last < 0 || done < last {
		t.Errorf("EvalAfter: epoch 1's evaluation at line %d, the last epoch's first step line %d:\n%s", done, last, strings.Join(afterLines, "\n"))
	}
	if i := slices.IndexFunc(afterLines, func(l string) bool { return strings.HasPrefix(l, "epoch 2/3 done") }); i < 0 {
		t.Errorf("EvalAfter: no line for epoch 2's evaluation:\n%s", strings.Join(afterLines, "\n"))
	}
}

// TestEvaluationsAuto: EvalAuto evaluates after the training exactly when
// the local workers fill the CPUs; the other values say when themselves,
// and an unknown one is refused.
func TestEvaluationsAuto(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Evaluations != EvalAuto {
		t.Fatalf("default %q, want %q", cfg.Evaluations, EvalAuto)
	}
	for _, c := range []struct {
		when  string
		local int
		after bool
	}{
		{EvalAuto, 0, false}, {"", 0, false}, {EvalAuto, runtime.NumCPU(), true}, {EvalAuto, runtime.NumCPU() + 3, true},
		{EvalDuring, runtime.NumCPU(), false}, {EvalAfter, 0, true},
	} {
		cfg.Evaluations, cfg.LocalWorkers = c.when, c.local
		if got := cfg.evaluateAfter(); got != c.after {
			t.Errorf("evaluations %q with %d local workers: after %v, want %v", c.when, c.local, got, c.after)
		}
	}
	if runtime.NumCPU() > 1 {
		cfg.Evaluations, cfg.LocalWorkers = EvalAuto, runtime.NumCPU()-1
		if cfg.evaluateAfter() {
			t.Errorf("%d local workers on %d CPUs: evaluations after the training, want during", runtime.NumCPU()-1, runtime.NumCPU())
		}
	}
	cfg.Evaluations = "later"
	if err := cfg.Job.Validate(); err == nil || !strings.Contains(err.Error(), `evaluations "later"`) {
		t.Errorf("evaluations %q: %v, want it refused", cfg.Evaluations, err)
	}
}
