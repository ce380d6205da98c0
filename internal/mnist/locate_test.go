package mnist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultDirRealMNIST loads the real data set through the module cache:
// its content is the original's.
func TestDefaultDirRealMNIST(t *testing.T) {
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	train, err := Load(dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := Load(dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if train.Count != 60000 || test.Count != 10000 || train.Rows != 28 || train.Cols != 28 {
		t.Fatalf("train %d, test %d images of %d×%d", train.Count, test.Count, train.Rows, train.Cols)
	}
	if w := append(CheckContent(dir, Train, train), CheckContent(dir, Test, test)...); len(w) != 0 {
		t.Fatalf("the module's files: %q", w)
	}
	// The first training digit is a 5 and the first test digit a 7.
	if train.Labels[0] != 5 || test.Labels[0] != 7 {
		t.Fatalf("first labels %d and %d, want 5 and 7", train.Labels[0], test.Labels[0])
	}
	x := make([]float64, 2*784)
	y := make([]int, 2)
	train.Gather([]int{0, 1}, x, y)
	lo, hi := 1.0, 0.0
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 || y[0] != 5 || y[1] != 0 {
		t.Fatalf("pixels span [%v, %v], labels %v; want [0, 1] and [5 0]", lo, hi, y)
	}
}

func TestVerifyDirRejectsAlteredFile(t *testing.T) {
	src, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name := range canonicalSHA256 {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "t10k-labels-idx1-ubyte.gz" {
			data[len(data)/2] ^= 1
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = VerifyDir(dir)
	if err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte.gz has SHA-256") {
		t.Fatalf("got %v, want a digest mismatch naming the file", err)
	}
	// The loader, too, refuses it, blaming the gzip stream.
	if _, err := Load(dir, Test); err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte.gz") || !strings.Contains(err.Error(), "gzip: ") {
		t.Fatalf("Load: %v, want a gzip error naming t10k-labels-idx1-ubyte.gz", err)
	}
}

func TestEscapeModulePath(t *testing.T) {
	got, err := escapeModulePath(Module)
	if err != nil || got != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatalf("got %q, %v", got, err)
	}
}
