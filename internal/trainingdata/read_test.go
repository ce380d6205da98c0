package trainingdata

import (
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringtrain/internal/mnist"
)

// TestAlteredUncompressedMNISTIsFlagged loads a -data folder of the four
// MNIST files decompressed, with 64 pixel bytes of the training images
// changed: the data loads (it is valid IDX) but Load warns that the
// training image file is not the original. The unaltered decompressed
// files draw no warning.
func TestAlteredUncompressedMNISTIsFlagged(t *testing.T) {
	src, err := mnist.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	// Decompressed once: under -race that takes seconds a file set.
	bases := []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
	original := map[string][]byte{}
	for _, base := range bases {
		gz, err := os.ReadFile(filepath.Join(src, base+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		if _, err := data.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		original[base] = data.Bytes()
	}
	for _, alter := range []bool{false, true} {
		dir := t.TempDir()
		for _, base := range bases {
			b := original[base]
			if alter && base == "train-images-idx3-ubyte" {
				b = bytes.Clone(b)
				for i := range 64 {
					b[16+4096*i+200] ^= 0x20
				}
			}
			if err := os.WriteFile(filepath.Join(dir, base), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var warnings []string
		if _, _, err := Load(context.Background(), Source{Dir: dir}, warnLogger(&warnings)); err != nil {
			t.Fatal(err)
		}
		want := 0
		if alter {
			want = 1
		}
		if len(warnings) != want || (alter && !strings.Contains(warnings[0], "train-images-idx3-ubyte is not the original MNIST")) {
			t.Errorf("altered %v: warnings %q, want %d naming train-images-idx3-ubyte", alter, warnings, want)
		}
	}
}

// warnLogger records the messages of warnings.
func warnLogger(into *[]string) *slog.Logger {
	return slog.New(&recordingHandler{into: into})
}

type recordingHandler struct{ into *[]string }

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	*h.into = append(*h.into, r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }
