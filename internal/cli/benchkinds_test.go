package cli

import "testing"

// TestBenchRefusesUnknownKind refuses an -allreduce-kinds entry the
// sweep's ranks do not know before measuring anything (exit status 2).
func TestBenchRefusesUnknownKind(t *testing.T) {
	if got := Bench([]string{"-allreduce-kinds", "float32,fp8", "-out", t.TempDir()}); got != 2 {
		t.Fatalf("ringbench -allreduce-kinds float32,fp8: exit status %d, want 2", got)
	}
}
