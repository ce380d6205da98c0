package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/grpcopts"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/ringtcp"
	pb "ringtrain/proto"
)

// TestBucketsReduceWhileTheCallerAdds drives a bucketed reduction by hand:
// a bucket is handed over as soon as it holds enough values and reduced
// while the caller goes on adding ranges; the range reaching the gradient's
// start stays open and leaves with the header when the caller waits; each
// bucket is prepared before it leaves, and is a collective of its own.
func TestBucketsReduceWhileTheCallerAdds(t *testing.T) {
	s := &stepper{timeout: time.Minute, ring: allreduce.New(allreduce.NewMemRing(1)[0], allreduce.DefaultConfig())}
	type call struct {
		c      uint64
		lo, hi int
	}
	started, release := make(chan call), make(chan struct{})
	var prepared [][2]int
	b := s.startBuckets(context.Background(), 7, 103, 3, 20, func(_ context.Context, c uint64, lo, hi int) error {
		started <- call{c, lo, hi}
		<-release
		return nil
	})
	b.prepare = func(lo, hi int) { prepared = append(prepared, [2]int{lo, hi}) }
	b.add(90, 103) // 13 values: stays open
	b.add(70, 90)  // 33: leaves
	if got := <-started; got != (call{0, 70, 103}) {
		t.Fatalf("first reduction %v, want collective 0 of [70, 103)", got)
	}
	// The first bucket is being reduced; the pass goes on.
	b.add(3, 70) // reaches the gradient's start: stays open
	if len(prepared) != 1 {
		t.Fatalf("buckets prepared %v before the last was handed over", prepared)
	}
	release <- struct{}{}
	done := make(chan error)
	go func() { done <- b.wait() }()
	if got := <-started; got != (call{1, 0, 70}) {
		t.Fatalf("last reduction %v, want collective 1 of [0, 70), the header included", got)
	}
	release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := [][2]int{{70, 103}, {0, 70}}; !slices.Equal(prepared, want) {
		t.Fatalf("prepared %v, want %v", prepared, want)
	}
	if s.collective != 2 {
		t.Fatalf("%d collectives numbered, want 2", s.collective)
	}
}

// TestBucketsStopOnError fails the second bucket's reduction: the
// buckets after it are not reduced, handing them over does not block (more
// of them than the queue holds), and wait returns the error naming the
// step and bucket. A context that ends while the goroutine waits for a
// bucket ends it too.
func TestBucketsStopOnError(t *testing.T) {
	s := &stepper{timeout: time.Minute, ring: allreduce.New(allreduce.NewMemRing(1)[0], allreduce.DefaultConfig())}
	errLink := errors.New("link down")
	var reduced []int
	b := s.startBuckets(context.Background(), 7, 1000, 1, 1, func(_ context.Context, c uint64, lo, hi int) error {
		reduced = append(reduced, lo)
		if c == 1 {
			return errLink
		}
		return nil
	})
	for lo := 999; lo >= 1; lo-- {
		b.add(lo, lo+1)
	}
	err := b.wait()
	if !errors.Is(err, errLink) || !strings.Contains(err.Error(), "step 7, gradient bucket 1 (values 998 to 999)") {
		t.Fatalf("%v: want the link's error, naming step 7 and bucket 1", err)
	}
	if !slices.Equal(reduced, []int{999, 998}) {
		t.Fatalf("buckets reduced from %v, want from 999 and 998, then none", reduced)
	}

	ctx, cancel := context.WithCancel(context.Background())
	b = s.startBuckets(ctx, 8, 10, 1, 1, func(context.Context, uint64, int, int) error {
		t.Error("a bucket was reduced although none was handed over")
		return nil
	})
	cancel()
	<-b.stopped
	if err := b.wait(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "step 8, gradient bucket 0") {
		t.Fatalf("%v: want the context's end, naming step 8 and bucket 0", err)
	}
}

// TestBucketsDoneBeforeCancellation cancels the context as the last
// bucket's reduction returns, as a ring that ends just after a step's
// last collective: every bucket was reduced, so wait reports success, as
// a step reduced in one collective would (repeated: the goroutine's choice
// between the closed queue and the ended context must not be a coin toss).
func TestBucketsDoneBeforeCancellation(t *testing.T) {
	s := &stepper{timeout: time.Minute, ring: allreduce.New(allreduce.NewMemRing(1)[0], allreduce.DefaultConfig())}
	for i := range 64 {
		ctx, cancel := context.WithCancel(context.Background())
		b := s.startBuckets(ctx, uint64(i), 10, 1, 4, func(_ context.Context, _ uint64, lo, _ int) error {
			if lo == 0 {
				cancel()
			}
			return nil
		})
		b.add(5, 10)
		b.add(1, 5)
		if err := b.wait(); err != nil {
			t.Fatalf("attempt %d: %v, want success: every bucket was reduced", i, err)
		}
		cancel()
	}
}

// TestOverlapMatchesOrdinary trains the Keras example in ordinary mode with
// the gradient reduced after the backward pass and in buckets during it.
// At 2 workers a sum has one order (a+b = b+a) and the weights are
// bit-identical, in float32 and float64; at 4 an element's sum starts at
// another rank when its bucket, not the whole vector, is cut into the
// ring's chunks, so the weights agree to rounding, and the replicas with
// each other exactly.
func TestOverlapMatchesOrdinary(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(2000))
	for _, dtype := range []string{"float32", "float64"} {
		for _, n := range []int{2, 4} {
			t.Run(fmt.Sprintf("%s/N=%d", dtype, n), func(t *testing.T) {
				spec := nn.KerasMNIST()
				spec.Dtype = dtype
				var params [2][]float64
				for i, bucket := range []int{0, 512} {
					rep := newReplicas(t, spec, data, n, 32, 0, 5)
					rep.overlap(bucket)
					if _, err := rep.train(t, 20); err != nil {
						t.Fatal(err)
					}
					rep.close()
					params[i] = paramsOf(rep.steppers[0].model)
					for r, st := range rep.steppers[1:] {
						if !slices.Equal(paramsOf(st.model), params[i]) {
							t.Fatalf("buckets of %d bytes: rank %d differs from rank 0", bucket, r+1)
						}
					}
				}
				if n == 2 {
					if !slices.Equal(params[0], params[1]) {
						t.Fatal("weights differ with and without overlap")
					}
					return
				}
				for i, w := range params[0] {
					if d := math.Abs(params[1][i] - w); d > 1e-5 {
						t.Fatalf("weight %d: %v with overlap, %v without", i, params[1][i], w)
					}
				}
			})
		}
	}
}

// TestPauseReachesEveryWorker has rank 2 of 3 ask the ring to pause at
// step 1, with the gradient in one collective, in buckets, compressed in
// buckets and in the deterministic mode's buckets: the flag travels with
// the step's header, so every worker's step 1, and none's step 0, says
// the ring pauses.
func TestPauseReachesEveryWorker(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	for _, c := range []struct {
		bucket, micro int
		compression   string
	}{{0, 0, ""}, {256, 0, ""}, {256, 0, "fp16"}, {512, 2, ""}} {
		t.Run(fmt.Sprintf("bucket=%d/micro=%d/%s", c.bucket, c.micro, c.compression), func(t *testing.T) {
			rep := newReplicas(t, nn.KerasMNIST(), data, 3, 24, c.micro, 1)
			defer rep.close()
			rep.overlap(c.bucket)
			local := rep.lanes[0].Epoch(0).Batch(0, nil)
			paused := make([][2]bool, 3)
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for r, st := range rep.steppers {
				if err := st.compress(c.compression); err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for step := range 2 {
						_, out, _, err := st.step(context.Background(), uint64(step), local, r == 2 && step == 1)
						if err != nil {
							errs[r] = err
							rep.rings[r].Close()
							return
						}
						paused[r][step] = out.paused
					}
				})
			}
			wg.Wait()
			for r := range 3 {
				if errs[r] != nil {
					t.Fatalf("rank %d: %v", r, errs[r])
				}
				if paused[r] != [2]bool{false, true} {
					t.Fatalf("rank %d paused after steps 0, 1: %v; want after step 1 only, as rank 2 asked", r, paused[r])
				}
			}
		})
	}
}

// dyingTransport closes itself after sending a number of frames, as a
// process killed in the middle of a collective.
type dyingTransport struct {
	allreduce.Transport
	framesLeft int
}

var errKilled = errors.New("killed by the test")

func (d *dyingTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	if d.framesLeft == 0 {
		d.Transport.Close()
		return errKilled
	}
	d.framesLeft--
	return d.Transport.Send(ctx, f)
}

// TestOverlapRingFailureMidBucket kills rank 1 of 3 in the middle of a
// step's second bucket, in both modes: every worker's step fails (none
// waits for its deadline, an hour), rank 2 names rank 1, the neighbour
// that died, and the errors name the bucket; the frames rank 2 received
// count the first bucket's; no goroutine is left behind (TestMain checks).
// The survivors keep their rings open until every step has returned: a
// worker closes its ring when its step fails, and rank 0's closing could
// otherwise reach rank 2 (a send to rank 0 refused) before rank 1's death
// does, which names rank 0 instead (seen once in ten suite runs).
func TestOverlapRingFailureMidBucket(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	for _, micro := range []int{0, 2} {
		t.Run(fmt.Sprintf("micro=%d", micro), func(t *testing.T) {
			rep := newReplicas(t, nn.KerasMNIST(), data, 3, 24, micro, 1)
			defer rep.close()
			rep.overlap(512)
			for _, st := range rep.steppers {
				st.timeout = time.Hour
			}
			// A collective on 3 ranks is 4 frames from each: rank 1 dies
			// sending the second frame of the second bucket.
			rep.steppers[1].ring = allreduce.New(&dyingTransport{Transport: rep.rings[1], framesLeft: 5}, allreduce.DefaultConfig())
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for r, st := range rep.steppers {
				local := rep.lanes[r].Epoch(0).Batch(0, nil)
				wg.Go(func() { _, _, _, errs[r] = st.step(context.Background(), 0, local, false) })
			}
			wg.Wait()
			for r, err := range errs {
				if err == nil {
					t.Fatalf("rank %d's step succeeded although rank 1 died", r)
				}
				t.Logf("rank %d: %v", r, err)
				if !strings.Contains(err.Error(), "gradient bucket 1") {
					t.Fatalf("rank %d: %v does not name bucket 1", r, err)
				}
			}
			var ae *allreduce.Error
			if !errors.As(errs[2], &ae) || ae.Peer.Rank != 1 || !strings.Contains(errs[2].Error(), "rank 1") {
				t.Fatalf("rank 2: %v, want an all-reduce error naming rank 1", errs[2])
			}
			if ae.Received < 4 {
				t.Fatalf("rank 2 counts %d frames received, want at least the first bucket's 4", ae.Received)
			}
		})
	}
}

// cancellingTransport cancels its worker's step after sending a number
// of frames, as a worker told to stop in the middle of a collective.
type cancellingTransport struct {
	allreduce.Transport
	framesLeft int
	cancel     context.CancelFunc
}

func (c *cancellingTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	if c.framesLeft == 0 {
		c.cancel()
		// A stopped worker sends nothing more. The in-memory pipe, whose
		// buffer has room, delivers a frame sent on a cancelled context
		// half the time (select), and with luck a whole bucket, which
		// the other ranks then completed.
		return context.Canceled
	}
	c.framesLeft--
	return c.Transport.Send(ctx, f)
}

// TestOverlapCancelledMidBucket cancels rank 1's compressed, bucketed
// step in the middle of its second bucket: rank 1's step returns the
// cancellation naming the bucket, the other workers' steps fail at once
// (none waits for its deadline, an hour), and no goroutine is left behind
// (TestMain checks).
func TestOverlapCancelledMidBucket(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	rep := newReplicas(t, nn.KerasMNIST(), data, 3, 24, 0, 1)
	defer rep.close()
	rep.overlap(256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for r, st := range rep.steppers {
		st.timeout = time.Hour
		if err := st.compress("fp16"); err != nil {
			t.Fatal(err)
		}
		if r == 1 {
			// A collective on 3 ranks is 4 frames from each.
			st.ring = allreduce.New(&cancellingTransport{Transport: rep.rings[1], framesLeft: 5, cancel: cancel}, allreduce.DefaultConfig())
		}
	}
	local := rep.lanes[0].Epoch(0).Batch(0, nil)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for r, st := range rep.steppers {
		wg.Go(func() {
			stepCtx := context.Background()
			if r == 1 {
				stepCtx = ctx
			}
			if _, _, _, errs[r] = st.step(stepCtx, 0, local, false); errs[r] != nil {
				rep.rings[r].Close()
			}
		})
	}
	wg.Wait()
	if !errors.Is(errs[1], context.Canceled) || !strings.Contains(errs[1].Error(), "gradient bucket 1") {
		t.Fatalf("rank 1: %v, want the cancellation, naming bucket 1", errs[1])
	}
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "gradient bucket 1") {
			t.Fatalf("rank %d: %v, want bucket 1 failed", r, err)
		}
	}
}

// slowLink is a transport whose every send takes the time a link of
// bytesPerSec needs to carry the frame, without using the CPU: a network
// slower than the machine, on a machine whose cores the workers share.
type slowLink struct {
	allreduce.Transport
	bytesPerSec float64
}

func (l *slowLink) Send(ctx context.Context, f *allreduce.Frame) error {
	time.Sleep(time.Duration(float64(f.DataLen()) / l.bytesPerSec * float64(time.Second)))
	return l.Transport.Send(ctx, f)
}

// BenchmarkOverlap measures a step of 784-512-512-10 (batch 128 a worker)
// and of the CNN of examples/cnn.json (batch 32) on N in-process workers
// whose frames cross 1 Gb/s links, with the gradient reduced after the
// backward pass and in the default 512 KiB buckets during it. ms/step is
// the step's wall time; the links' time is sleep, which overlap can hide
// even where the cores are busy.
func BenchmarkOverlap(b *testing.B) {
	data := loadMNIST(b, mnist.Train)
	for _, m := range []struct {
		name, file string
		batch      int
	}{{"mlp512", "../../bench/mlp512.json", 128}, {"cnn", "../../examples/cnn.json", 32}} {
		raw, err := os.ReadFile(m.file)
		if err != nil {
			b.Fatal(err)
		}
		spec, err := nn.ParseSpec(raw)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{2, 4} {
			for _, bucket := range []int{0, 512 << 10} {
				b.Run(fmt.Sprintf("%s/N=%d/bucket=%d", m.name, n, bucket), func(b *testing.B) {
					rep := newReplicas(b, spec, data, n, m.batch*n, 0, 1)
					defer rep.close()
					rep.overlap(bucket)
					for r, st := range rep.steppers {
						st.ring = allreduce.New(&slowLink{Transport: rep.rings[r], bytesPerSec: 125e6}, allreduce.DefaultConfig())
					}
					if _, err := rep.train(b, 3); err != nil { // warm the buffers
						b.Fatal(err)
					}
					b.ResetTimer()
					if _, err := rep.train(b, b.N); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
				})
			}
		}
	}
}

// connectPlane connects n ranks on loopback over a data plane, "tcp" or
// "grpc", as workers do; the services stop when the test ends.
func connectPlane(t *testing.T, plane string, n int) []allreduce.Transport {
	t.Helper()
	addrs := make([]string, n)
	connect := make([]func(ctx context.Context) (allreduce.Transport, error), n)
	for r := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[r] = lis.Addr().String()
		if plane == "tcp" {
			svc, _ := ringtcp.Listen(lis, ringtcp.ServiceConfig{})
			t.Cleanup(func() { svc.Close() })
			connect[r] = func(ctx context.Context) (allreduce.Transport, error) {
				return ringtcp.Connect(ctx, svc, ringtcp.Config{JobID: "j", Generation: 1, Rank: r, Addrs: addrs})
			}
			continue
		}
		srv := grpc.NewServer(grpcopts.ServerOptions()...)
		svc := ringrpc.NewService(5 * time.Second)
		pb.RegisterRingServer(srv, svc)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		connect[r] = func(ctx context.Context) (allreduce.Transport, error) {
			return ringrpc.Connect(ctx, svc, ringrpc.Config{JobID: "j", Generation: 1, Rank: r, Addrs: addrs, DialOptions: grpcopts.DialOptions()})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := make([]allreduce.Transport, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() { ts[r], errs[r] = connect[r](ctx) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("%s rank %d: %v", plane, r, err)
		}
	}
	return ts
}

// TestOverlapOverDataPlanes trains 3 overlapped steps on 3 workers over
// the TCP data plane and over gRPC: the weights are bit-identical to those
// over in-memory pipes (the transports carry the buckets' frames; the sums
// and their order are the ring's).
func TestOverlapOverDataPlanes(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	train := func(rings []allreduce.Transport) []float64 {
		rep := newReplicas(t, nn.KerasMNIST(), data, 3, 24, 0, 1)
		defer rep.close()
		rep.overlap(512)
		if rings != nil {
			for _, r := range rep.rings {
				r.Close()
			}
			rep.rings = rings
			for r, st := range rep.steppers {
				st.ring = allreduce.New(rings[r], allreduce.DefaultConfig())
			}
		}
		if _, err := rep.train(t, 3); err != nil {
			t.Fatal(err)
		}
		if c := rep.steppers[0].collective; c != 6 {
			t.Fatalf("%d collectives in 3 steps, want 2 buckets a step", c)
		}
		return paramsOf(rep.steppers[0].model)
	}
	want := train(nil)
	for _, plane := range []string{"tcp", "grpc"} {
		if got := train(connectPlane(t, plane, 3)); !slices.Equal(got, want) {
			t.Fatalf("%s: weights differ from those over in-memory pipes", plane)
		}
	}
}
