package mnist

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestFetchVerifiesDigests serves the MNIST files from a local HTTP server:
// a good copy lands in the folder and loads; an altered file is refused and
// leaves nothing behind.
func TestFetchVerifiesDigests(t *testing.T) {
	src, err := DefaultDir()
	if err != nil {
		t.Skip(err)
	}
	var tamper atomic.Bool
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		data, err := os.ReadFile(filepath.Join(src, filepath.Base(r.URL.Path)))
		if err != nil || strings.HasPrefix(r.URL.Path, "/missing/") {
			http.NotFound(w, r)
			return
		}
		if tamper.Load() && strings.HasPrefix(filepath.Base(r.URL.Path), "t10k-labels") {
			data[100] ^= 1
		}
		w.Write(data)
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "mnist")
	if err := Fetch(context.Background(), srv.Client(), srv.URL+"/mnist/", dir); err != nil {
		t.Fatal(err)
	}
	if err := VerifyDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, Test); err != nil {
		t.Fatal(err)
	}
	// A second fetch finds the files in place and downloads nothing.
	before := requests.Load()
	if err := Fetch(context.Background(), srv.Client(), srv.URL+"/mnist", dir); err != nil || requests.Load() != before {
		t.Fatalf("second fetch: %v, %d requests", err, requests.Load()-before)
	}

	tamper.Store(true)
	bad := filepath.Join(t.TempDir(), "bad")
	err = Fetch(context.Background(), srv.Client(), srv.URL, bad)
	if err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte.gz") || !strings.Contains(err.Error(), "refusing the file") {
		t.Fatalf("altered file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bad, "t10k-labels-idx1-ubyte.gz")); !os.IsNotExist(err) {
		t.Fatal("the altered file was left in the folder")
	}
	entries, _ := os.ReadDir(bad)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".part-") {
			t.Fatalf("partial download %s left behind", e.Name())
		}
	}
	if err := Fetch(context.Background(), srv.Client(), srv.URL+"/missing", filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing files: %v", err)
	}
}
