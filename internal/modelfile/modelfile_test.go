package modelfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsQuoteAShortPrefix: a model description whose activation name
// is 10 MiB long is refused with an error of under a kilobyte that still
// names the file, the field and the reason.
func TestErrorsQuoteAShortPrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.json")
	if err := os.WriteFile(path, []byte(`{"input_shape": [784], "layers": [{"type": "dense", "units": 10, "activation": "`+strings.Repeat("x", 10<<20)+
		`"}], "loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || len(err.Error()) > 1024 || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "layers[0].activation") {
		t.Errorf("error of %d bytes: %.300q…", len(err.Error()), err)
	}
	var inner interface{ Unwrap() error }
	if !errors.As(err, &inner) {
		t.Errorf("the clipped error does not wrap the original")
	}
}

// TestLoad: no path gives the Keras example; a missing file is an error
// that names it; a valid file is parsed.
func TestLoad(t *testing.T) {
	spec, err := Load("")
	if err != nil || spec.Summary() == "" {
		t.Fatalf("the default description: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v, want an error naming it", err)
	}
	path := filepath.Join(t.TempDir(), "small.json")
	if err := os.WriteFile(path, []byte(`{"input_shape": [784], "layers": [{"type": "dense", "units": 10, "activation": "softmax"}],
		"loss": "sparse_categorical_crossentropy", "optimizer": {"name": "sgd"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err = Load(path)
	if err != nil || spec.Optimizer.Name != "sgd" || len(spec.Layers) != 1 {
		t.Fatalf("small.json: %+v, %v", spec, err)
	}
}
