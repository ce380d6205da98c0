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

// TestUnmeasuredTargetIsNotMet: a full run that measured only weak
// scaling judges that target and says the all-reduce and time-to-accuracy
// targets were not measured, rather than "met" with nothing compared.
func TestUnmeasuredTargetIsNotMet(t *testing.T) {
	full := writeReport(t, DefaultConfig())
	for _, want := range []string{
		"| all-reduce busbw ≥ gloo from 64 KiB, latency ≤ gloo up to 16 KiB | not measured in this run",
		"below DDP for every model and N | not measured in this run",
		"(batch 32 per worker) | **missed**",
	} {
		if !strings.Contains(full, want) {
			t.Errorf("report lacks %q:\n%s", want, full)
		}
	}
	if strings.Contains(full, "| met |") {
		t.Errorf("report calls a target met with nothing measured:\n%s", full)
	}
}

// TestReplotDrawsFromResults: -replot draws the plots of an earlier run from
// its results.jsonl alone, one file per suite present, and names a bad
// record's line.
func TestReplotDrawsFromResults(t *testing.T) {
	dir := t.TempDir()
	lines := `{"suite":"allreduce","impl":"ringtrain","workers":2,"bytes":1024,"busbw_gbps":0.01}
{"suite":"allreduce","impl":"ringtrain","workers":2,"bytes":4096,"busbw_gbps":0.03}
{"suite":"weak","impl":"ringtrain","model":"keras","per_worker_batch":32,"workers":1,"samples_per_second":100}
{"suite":"weak","impl":"ringtrain","model":"keras","per_worker_batch":32,"workers":2,"samples_per_second":180}
`
	if err := os.WriteFile(filepath.Join(dir, "results.jsonl"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Replot(dir, 0.93)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "allreduce_busbw.png"), filepath.Join(dir, "weak_scaling.png")}
	if len(files) != 2 || files[0] != want[0] || files[1] != want[1] {
		t.Fatalf("wrote %q, want %q", files, want)
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "results.jsonl"), []byte(lines+"{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Replot(dir, 0.93); err == nil || !strings.Contains(err.Error(), "record 5") {
		t.Errorf("bad record: %v, want its number", err)
	}
}
