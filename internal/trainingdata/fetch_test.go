package trainingdata

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestCancelStopsTheDownload: a server that sends the start of a file and
// then stalls holds the fetch until the caller cancels (Ctrl-C); the fetch
// then returns context.Canceled at once and leaves no file, partial or
// whole, in the folder.
func TestCancelStopsTheDownload(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		w.Write(make([]byte, 64<<10))
		w.(http.Flusher).Flush()
		select { // stall until the client goes or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	// started is told when the first bytes of the body have been read:
	// the fetch is writing a file by then.
	started := make(chan struct{}, 1)
	client := srv.Client()
	client.Transport = bodyRead{client.Transport, started}
	dir := filepath.Join(t.TempDir(), "mnist")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := Load(ctx, Source{Dir: dir, URL: srv.URL, Client: client}, quiet)
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the fetch ended before the server stalled: %v", err)
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a bound on failure, not a wait
		t.Fatal("the fetch still runs a minute after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	t.Logf("error: %v", err)
	left, rerr := os.ReadDir(dir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, e := range left {
		t.Errorf("the cancelled fetch left %s", e.Name())
	}
}

// bodyRead is a transport whose responses' bodies tell started after their
// first read.
type bodyRead struct {
	http.RoundTripper
	started chan<- struct{}
}

func (b bodyRead) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.RoundTripper.RoundTrip(r)
	if err == nil {
		resp.Body = &tellingBody{ReadCloser: resp.Body, started: b.started}
	}
	return resp, err
}

type tellingBody struct {
	io.ReadCloser
	started chan<- struct{}
}

func (b *tellingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		select {
		case b.started <- struct{}{}:
		default:
		}
	}
	return n, err
}
