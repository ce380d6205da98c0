package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }

// TestQuickSuite runs the benchmark command in quick mode without the peer
// and checks what it writes: every suite's records, the report's sections
// and the plots. It asserts structure, not speed.
func TestQuickSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the benchmark command")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "ringbench")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(exe, "-quick", "-peer", "off", "-out", out, "-scripts", "../../bench")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ringbench: %v\n%s", err, msg)
	}
	f, err := os.Open(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	suites := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Suite, Impl string
			CPUs        int `json:"cpus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if rec.CPUs < 1 || rec.Impl == "pytorch-gloo" {
			t.Fatalf("record %s: cpus %d, impl %s", sc.Text(), rec.CPUs, rec.Impl)
		}
		suites[rec.Suite]++
	}
	for _, s := range []string{"ceiling", "allreduce", "weak", "strong", "tta"} {
		if suites[s] == 0 {
			t.Errorf("no %s records (got %v)", s, suites)
		}
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## All-reduce sweep", "## Weak scaling", "## Strong scaling", "## Time to test accuracy", "### Keras example, to 0.5",
		"Peer: skipped", "It measures nothing", "Not checked: a quick run (`-quick`) measures nothing"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, png := range []string{"allreduce_busbw.png", "weak_scaling.png", "strong_scaling.png", "time_to_accuracy.png"} {
		b, err := os.ReadFile(filepath.Join(out, png))
		if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG (%v)", png, err)
		}
	}
}
