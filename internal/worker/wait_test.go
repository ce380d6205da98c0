package worker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "ringtrain/proto"
)

// logRecord is one log record: its level, message and attributes.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog handler that keeps every record and lets a test
// wait for one.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced at every record
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

// await returns the first record that match accepts, failing the test if
// none comes within limit.
func (h *logRecorder) await(t *testing.T, limit time.Duration, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	deadline := time.After(limit)
	for {
		h.mu.Lock()
		for _, r := range h.records {
			if match(r) {
				h.mu.Unlock()
				return r
			}
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log record %s within %v; got %v", what, limit, h.all())
		}
	}
}

func (h *logRecorder) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), h.records...)
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitingWorker starts a worker whose coordinator does not answer.
func waitingWorker(t *testing.T, ctx context.Context, drain chan struct{}) (*logRecorder, string, chan error) {
	rec := newLogRecorder()
	cfg := DefaultConfig()
	cfg.Coordinator = closedAddr(t)
	cfg.Listen, cfg.GossipListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", "-"
	cfg.ID, cfg.Logger, cfg.Drain = "w-wait", slog.New(rec), drain
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	return rec, cfg.Coordinator, done
}

// TestWaitingWorkerSaysSoAndLeavesOnSIGTERM: a worker whose coordinator
// does not answer says at once what it waits for and where, reports its
// retries with readable durations and without claiming it lost a
// coordinator it never had, and a drain (SIGTERM) ends it at once.
func TestWaitingWorkerSaysSoAndLeavesOnSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	drain := make(chan struct{})
	rec, addr, done := waitingWorker(t, ctx, drain)
	// Seconds at most; before, the first word came after the join timeout.
	rec.await(t, 10*time.Second, "saying it waits", func(r logRecord) bool {
		return strings.Contains(r.msg, "waiting for the coordinator at "+addr)
	})
	retry := rec.await(t, 10*time.Second, "reporting a retry", func(r logRecord) bool { return strings.Contains(r.msg, "retrying") })
	if d, err := time.ParseDuration(retry.attrs["retry_in"]); err != nil || d <= 0 {
		t.Errorf("retry_in %q is not a readable duration", retry.attrs["retry_in"])
	}
	if strings.Contains(retry.attrs["err"], "lost") || strings.Contains(retry.msg, "lost") {
		t.Errorf("a worker that never had a coordinator reports losing one: %+v", retry)
	}
	close(drain)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("drained worker: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting worker did not leave within 10s of SIGTERM")
	}
	for _, r := range rec.all() {
		if r.level >= slog.LevelWarn {
			t.Errorf("warning while waiting: %+v", r)
		}
	}
}

// TestInterruptedWaitIsQuiet: a worker interrupted (Ctrl-C) while it waits
// for its coordinator returns the context's error at once and warns about
// nothing.
func TestInterruptedWaitIsQuiet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec, _, done := waitingWorker(t, ctx, make(chan struct{}))
	rec.await(t, 10*time.Second, "reporting a retry", func(r logRecord) bool { return strings.Contains(r.msg, "retrying") })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted worker: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an interrupted worker did not return within 10s")
	}
	for _, r := range rec.all() {
		if r.level >= slog.LevelWarn {
			t.Errorf("warning on interrupt: %+v", r)
		}
	}
}

// TestTakenDefaultPortsMove: default addresses whose ports are taken move
// to free ports, logged; an address the user chose does not move.
func TestTakenDefaultPortsMove(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := newLogRecorder()
	cfg := DefaultConfig()
	cfg.Coordinator = closedAddr(t)
	cfg.Listen, cfg.GossipListen, cfg.MetricsListen = busy, busy, busy
	cfg.Movable = Movable{Listen: true, Gossip: true, Metrics: true}
	cfg.ID, cfg.Logger = "w-ports", slog.New(rec)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	for _, msg := range []string{"serving metrics", "ring service listening", "gossip listening"} {
		r := rec.await(t, 10*time.Second, msg, func(r logRecord) bool { return r.msg == msg })
		if r.attrs["addr"] == busy || !strings.HasPrefix(r.attrs["addr"], "127.0.0.1:") {
			t.Errorf("%s at %s, want a free port of 127.0.0.1 instead of %s", msg, r.attrs["addr"], busy)
		}
	}
	cancel()
	<-done

	cfg.Movable = Movable{}
	cfg.Logger = slog.New(newLogRecorder())
	err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), busy) {
		t.Errorf("a taken port the user chose: %v, want an error naming %s", err, busy)
	}
}

// endingCoordinator answers health checks but turns every Join away, as a
// coordinator whose job is ending does; it counts the Joins.
type endingCoordinator struct {
	pb.UnimplementedCoordinatorServer
	joins atomic.Int64
}

func (c *endingCoordinator) Join(*pb.JoinRequest, grpc.ServerStreamingServer[pb.Instruction]) error {
	c.joins.Add(1)
	return status.Error(codes.Unavailable, "coordinator: the job is ending")
}

// TestTurnedAwayWorkerBacksOffAndLeavesOnSIGTERM: a worker whose
// coordinator answers health checks but ends every session at once retries
// with a growing pause (before: thousands of Joins and log lines a second,
// deaf to SIGTERM until killed) and leaves at once on a drain.
func TestTurnedAwayWorkerBacksOffAndLeavesOnSIGTERM(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coord := &endingCoordinator{}
	pb.RegisterCoordinatorServer(srv, coord)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := newLogRecorder()
	cfg := DefaultConfig()
	cfg.Coordinator = l.Addr().String()
	cfg.Listen, cfg.GossipListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", "-"
	drain := make(chan struct{})
	cfg.ID, cfg.Logger, cfg.Drain = "w-away", slog.New(rec), drain
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	for coord.joins.Load() < 3 {
		select {
		case err := <-done:
			t.Fatalf("worker returned %v before its third try", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Tries 100, 200, 400 ms apart and growing: a second holds a few.
	before := coord.joins.Load()
	time.Sleep(time.Second)
	if n := coord.joins.Load() - before; n > 4 {
		t.Errorf("%d Joins in one second after the third: want a growing pause between tries", n)
	}
	close(drain)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("drained worker: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a turned-away worker did not leave within 10s of SIGTERM")
	}
}

// overCoordinator answers every Join with the Stop of a job that is over,
// as a coordinator does to a worker that missed it.
type overCoordinator struct {
	pb.UnimplementedCoordinatorServer
	stop *pb.Stop
}

func (c *overCoordinator) Join(_ *pb.JoinRequest, stream grpc.ServerStreamingServer[pb.Instruction]) error {
	return stream.Send(&pb.Instruction{Kind: &pb.Instruction_Stop{Stop: c.stop}})
}

// TestStopAnsweringAJoinEndsTheWorker: a worker that comes back to a
// coordinator whose job is over (it missed the Stop as its ring failed)
// is given that Stop and leaves at once, released or failed as the job
// ended, instead of retrying until its launcher kills it.
func TestStopAnsweringAJoinEndsTheWorker(t *testing.T) {
	for _, st := range []*pb.Stop{{}, {Failed: true, Reason: "interrupted (Ctrl-C)"}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		pb.RegisterCoordinatorServer(srv, &overCoordinator{stop: st})
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go srv.Serve(l)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cfg := DefaultConfig()
		cfg.Coordinator = l.Addr().String()
		cfg.Listen, cfg.GossipListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0", "-"
		cfg.ID, cfg.Logger = "w-over", slog.New(newLogRecorder())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg) }()
		select {
		case err := <-done:
			if st.Failed {
				if err == nil || !strings.Contains(err.Error(), st.Reason) {
					t.Errorf("worker told the job failed: %v, want an error with %q", err, st.Reason)
				}
			} else if err != nil {
				t.Errorf("worker released: %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the worker did not leave within 10s of a Stop answering its Join (failed %v)", st.Failed)
		}
		cancel()
		srv.Stop()
	}
}
