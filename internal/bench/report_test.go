package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// weakRecords are a weak-scaling measurement where ringtrain is far behind
// the peer: enough for the targets section to judge a miss.
func weakRecords() []Record {
	return []Record{
		{Suite: "weak", Impl: "ringtrain", Model: "keras", PerWorkerBatch: 32, Workers: 1, SamplesPerSecond: 100, Efficiency: 1},
		{Suite: "weak", Impl: "pytorch-gloo", Model: "keras", PerWorkerBatch: 32, Workers: 1, SamplesPerSecond: 2500, Efficiency: 1},
	}
}

func writeReport(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Out = t.TempDir()
	r := &runner{cfg: cfg, records: weakRecords(), cpus: 2, started: time.Now(), python: "python3", peerNote: "PyTorch 2.0"}
	if err := r.report(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestQuickReportJudgesNothing: a quick run's report says it measured
// nothing and judges no target, even where the figures would miss one; a
// full run's report judges the same figures.
func TestQuickReportJudgesNothing(t *testing.T) {
	quick := writeReport(t, QuickConfig())
	for _, want := range []string{"It measures nothing", "Not checked: a quick run (`-quick`) measures nothing"} {
		if !strings.Contains(quick, want) {
			t.Errorf("quick report lacks %q:\n%s", want, quick)
		}
	}
	if strings.Contains(quick, "missed") || strings.Contains(quick, "| met |") {
		t.Errorf("quick report judges a target:\n%s", quick)
	}
	full := writeReport(t, DefaultConfig())
	if !strings.Contains(full, "**missed**: N=1: 0.04×") || strings.Contains(full, "measures nothing") {
		t.Errorf("full report does not judge the target:\n%s", full)
	}
}
