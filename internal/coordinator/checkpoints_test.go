package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"ringtrain/internal/nn"
)

// TestResumeSkipsCorruptNewest writes three checkpoints, corrupts the
// newest, and resumes: from the one before, with a warning.
func TestResumeSkipsCorruptNewest(t *testing.T) {
	dir := t.TempDir()
	m, err := nn.New(nn.KerasMNIST())
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	for _, step := range []uint64{100, 200, 300} {
		path := filepath.Join(dir, fmt.Sprintf(checkpointPattern, step))
		if err := nn.SaveCheckpoint(path, m.Checkpoint(0, step)); err != nil {
			t.Fatal(err)
		}
	}
	newest := filepath.Join(dir, fmt.Sprintf(checkpointPattern, 300))
	data, _ := os.ReadFile(newest)
	data[len(data)/2] ^= 0xff
	os.WriteFile(newest, data, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a checkpoint"), 0o644)

	var warnings []string
	ck, _, err := resumeCheckpoint(dir, warnLogger(&warnings))
	if err != nil {
		t.Fatal(err)
	}
	if ck == nil || ck.Step != 200 {
		t.Fatalf("resumed from %+v, want step 200", ck)
	}
	if len(warnings) != 1 {
		t.Fatalf("warnings %q, want one about the corrupt checkpoint", warnings)
	}
	empty, _, err := resumeCheckpoint(t.TempDir(), quiet)
	if err != nil || empty != nil {
		t.Fatalf("empty folder: %v, %v", empty, err)
	}
}
