package coordinator

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"ringtrain/internal/transportsec"
	"ringtrain/internal/worker"
	pb "ringtrain/proto"
)

// TestCredentialsKeepStrangersOut runs a job with mutual TLS, a token and
// gossip encryption. Its workers train; a process without the credentials,
// or with a certificate but the wrong token, cannot join, cannot read a
// shard and cannot open a gradient stream to a worker. The job is held at
// its finish line until the strangers have tried, so that it outlasts
// their attempts however slowly they are answered.
func TestCredentialsKeepStrangersOut(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	dc, err := transportsec.GenerateDevCredentials(filepath.Join(t.TempDir(), "creds"), []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sec := transportsec.Security{CertFile: dc.Cert, KeyFile: dc.Key, CAFile: dc.CA, Token: dc.Token, GossipKey: dc.GossipKey}
	cfg := testConfig(t, 2)
	const steps = 20
	cfg.Security, cfg.MaxSteps = sec, steps
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = lis
	ringAddr := freeTCP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	held := holdFinish(ctx)
	defer held.release()
	cfg.Progress = held
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range workerIDs(2) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := worker.DefaultConfig()
			wc.Coordinator, wc.Listen, wc.GossipListen, wc.MetricsListen, wc.ID, wc.Logger = lis.Addr().String(), "127.0.0.1:0", "127.0.0.1:0", "", id, quiet
			if i == 0 {
				wc.Listen = ringAddr
			}
			wc.Security = sec
			errs[i] = worker.Run(ctx, wc)
		}()
	}
	var sum *Summary
	var runErr error
	done := make(chan struct{})
	go func() {
		sum, runErr = Run(ctx, cfg)
		close(done)
	}()
	// While the job runs (worker 0's ring service is up), strangers try
	// their luck.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", ringAddr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker 0 never served its ring")
		}
	}
	insecure := transportsec.Security{}
	wrongToken := sec
	wrongToken.Token = "guess"
	for _, c := range []struct {
		name string
		sec  transportsec.Security
		want string
	}{{"no credentials", insecure, "Unavailable"}, {"wrong token", wrongToken, "Unauthenticated"}} {
		if err := c.sec.Load(); err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(lis.Addr().String(), c.sec.DialOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		// Each refusal comes in milliseconds; the generous deadline is for a
		// machine loaded by the race detector and other packages' tests,
		// where a first connection attempt has taken over 5s.
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		join, err := pb.NewCoordinatorClient(conn).Join(rctx, &pb.JoinRequest{WorkerId: "intruder", RingAddr: "127.0.0.1:1"})
		if err == nil {
			_, err = join.Recv()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: join: %v, want %s", c.name, err, c.want)
		}
		rcancel()
		rctx, rcancel = context.WithTimeout(ctx, 30*time.Second)
		shard, err := pb.NewCoordinatorClient(conn).FetchShard(rctx, &pb.ShardRequest{LaneCount: 1})
		if err == nil {
			_, err = shard.Recv()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: fetch shard: %v, want %s", c.name, err, c.want)
		}
		rcancel()
		rctx, rcancel = context.WithTimeout(ctx, 30*time.Second)
		rconn, _ := grpc.NewClient(ringAddr, c.sec.DialOptions()...)
		pass, err := pb.NewRingClient(rconn).Pass(rctx)
		if err == nil {
			pass.Send(&pb.RingFrame{Hello: &pb.Hello{JobId: "x", Generation: 1}})
			_, err = pass.CloseAndRecv()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: gradient stream: %v, want %s", c.name, err, c.want)
		}
		rcancel()
		conn.Close()
		rconn.Close()
	}
	select {
	case <-done:
		t.Fatal("the job ended before the strangers had tried")
	default:
	}
	held.release()
	<-done
	wg.Wait()
	if runErr != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("job %v, workers %v", runErr, errs)
	}
	if sum.Steps != steps {
		t.Fatalf("the job ran %d steps", sum.Steps)
	}
}

func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// finishHold is a progress display that holds the coordinator at a job's
// finish line (its last step trained, its workers not yet stopped, their
// services up) until released or its context ends: the job outlasts
// whatever a test does meanwhile, however few its steps.
type finishHold struct {
	ctx      context.Context
	released chan struct{}
	once     sync.Once
}

func holdFinish(ctx context.Context) *finishHold {
	return &finishHold{ctx: ctx, released: make(chan struct{})}
}

func (h *finishHold) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), "finished ") {
		select {
		case <-h.released:
		case <-h.ctx.Done():
		}
	}
	return len(b), nil
}

// release lets the job end; it may be called more than once.
func (h *finishHold) release() { h.once.Do(func() { close(h.released) }) }
