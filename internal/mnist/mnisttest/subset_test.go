package mnisttest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"ringtrain/internal/mnist"
)

// TestWriteSubsetReadsBack writes subsets and loads them as a coordinator
// would: the whole test split written is the original file (its content
// digest), and a subset holds the real sets' first images and labels.
func TestWriteSubsetReadsBack(t *testing.T) {
	src, err := source()
	if err != nil {
		t.Fatal(err)
	}
	test, err := mnist.Load(src, mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	whole := t.TempDir()
	if err := WriteSubset(whole, 1, test.Count); err != nil {
		t.Fatal(err)
	}
	got, err := mnist.Load(whole, mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	if w := mnist.CheckContent(whole, mnist.Test, got); len(w) != 0 {
		t.Fatalf("the whole test split written is not the original: %v", w)
	}

	dir := t.TempDir()
	if err := WriteSubset(dir, 300, 100); err != nil {
		t.Fatal(err)
	}
	got, err = mnist.Load(dir, mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 100 || !slices.Equal(got.Pixels, test.Pixels[:100*784]) || !slices.Equal(got.Labels, test.Labels[:100]) {
		t.Fatalf("test split: %d images read back, not the real set's first 100", got.Count)
	}
	train, err := mnist.Load(dir, mnist.Train)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := mnist.LoadLabels(filepath.Join(src, "train-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if train.Count != 300 || !slices.Equal(train.Pixels, firstBytes(t, filepath.Join(src, "train-images-idx3-ubyte.gz"), 16, 300*784)) ||
		!slices.Equal(train.Labels, labels[:300]) {
		t.Fatalf("training split: %d images read back, not the real set's first 300", train.Count)
	}

	if err := WriteSubset(t.TempDir(), 70000, 1); err == nil {
		t.Fatal("a subset larger than the set was written")
	}
}

// firstBytes returns n bytes of the gzipped file at path, after skip.
func firstBytes(t *testing.T, path string, skip, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, zr, int64(skip+n)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()[skip:]
}
