package compose

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"ringtrain/internal/coordinator"
)

// TestInterruptStopsTheDataFetch: a job composed with a -data-url whose
// server stalls ends as soon as the coordinator's context is cancelled
// (Ctrl-C), with context.Canceled, instead of waiting out the download's
// timeout.
func TestInterruptStopsTheDataFetch(t *testing.T) {
	requested := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case requested <- struct{}{}:
		default:
		}
		select { // stall until the client goes or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := coordinator.DefaultConfig()
	cfg.Workers, cfg.Progress, cfg.Checkpoint, cfg.Summary = 1, nil, "", ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Listen, cfg.GossipListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", "-"
	cfg, err := Inputs{DataDir: t.TempDir(), DataURL: srv.URL}.Job(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := coordinator.Run(ctx, cfg)
		done <- err
	}()
	select {
	case <-requested:
	case err := <-done:
		t.Fatalf("the job ended before fetching: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute): // a bound on failure, not a wait
		t.Fatal("the job still fetches a minute after its context was cancelled")
	}
}
