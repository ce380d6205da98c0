package mnist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadNamesMissingFolder: a data folder that does not exist, or is a
// file, is named as such, not as a folder without the IDX files.
func TestLoadNamesMissingFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "nope"): "does not exist",
		file:                       "is a file, not a folder",
		dir:                        "neither train-images-idx3-ubyte.gz nor",
	} {
		_, err := Load(path, Train)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s): %v, want an error naming it with %q", path, err, want)
		}
	}
}
