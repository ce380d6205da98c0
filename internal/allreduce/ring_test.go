package allreduce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }

func TestMemTransportConformance(t *testing.T) {
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport { return allreduce.NewMemRing(n) })
}

// TestPartsSplitAnywhere feeds a segment's bytes in parts cut in the middle
// of elements, as a transport may deliver them.
func TestPartsSplitAnywhere(t *testing.T) {
	want := []float64{1.5, -2, 3e300, 0.25, 7}
	b := append([]byte(nil), allreduce.EncodeForTest(want)...)
	for _, cuts := range [][]int{{3}, {8, 9, 10}, {1, 2, 3, 4, 5, 6, 7}, {20, 39}} {
		var parts [][]byte
		prev := 0
		for _, c := range cuts {
			parts = append(parts, b[prev:c])
			prev = c
		}
		parts = append(parts, b[prev:])
		got := make([]float64, len(want))
		allreduce.SetPartsForTest(got, parts)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("cuts %v: element %d is %v, want %v", cuts, i, got[i], want[i])
			}
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	v := []float64{1.5, -2, 3e300, 0}
	b := append([]byte(nil), allreduce.EncodeForTest(v)...)
	// A misaligned copy takes the slow path.
	odd := append([]byte{0}, b...)[1:]
	for _, buf := range [][]byte{b, odd} {
		got := make([]float64, len(v))
		allreduce.DecodeForTest(got, buf)
		for i := range v {
			if got[i] != v[i] {
				t.Fatalf("value %d: %v, want %v", i, got[i], v[i])
			}
		}
	}
}

// echoTransport is rank 0 of two whose receive fails and breaks the
// transport, so that the send in flight fails on the broken transport and
// cancels the collective before the receive returns: the ordering that
// made a ring report the wrong neighbour.
type echoTransport struct{ broke chan struct{} }

var errLeftGone = errors.New("the left-hand neighbour died")

func (e *echoTransport) Rank() int             { return 0 }
func (e *echoTransport) Size() int             { return 2 }
func (e *echoTransport) Left() allreduce.Peer  { return allreduce.Peer{Rank: 1, Addr: "left"} }
func (e *echoTransport) Right() allreduce.Peer { return allreduce.Peer{Rank: 1, Addr: "right"} }
func (e *echoTransport) Close() error          { return nil }
func (e *echoTransport) Send(ctx context.Context, _ *allreduce.Frame) error {
	<-e.broke
	return fmt.Errorf("%w: %w", allreduce.ErrBroken, errLeftGone)
}

func (e *echoTransport) Recv(ctx context.Context, _ *allreduce.Frame) error {
	close(e.broke)
	<-ctx.Done() // the sender has failed and cancelled the collective
	return errLeftGone
}

// TestSendEchoingReceiveFailure: a send that failed only because the
// receive broke the transport does not hide the receive's error, which
// names the neighbour at fault.
func TestSendEchoingReceiveFailure(t *testing.T) {
	err := allreduce.New(&echoTransport{broke: make(chan struct{})}, allreduce.Config{}).
		AllReduce(context.Background(), 1, make([]float64, 4), allreduce.Sum)
	var e *allreduce.Error
	if !errors.As(err, &e) || e.Dir != "receive from" || !errors.Is(err, errLeftGone) || errors.Is(err, allreduce.ErrBroken) {
		t.Fatalf("error %v: want the receive's failure, naming the left-hand neighbour", err)
	}
}

// lateTransport is rank 0 of two whose first frame arrives only as the
// collective's deadline passes (the fake clock moves late on during the
// receive), as one held up on a partitioned link and released just then.
type lateTransport struct {
	clock *allreducetest.FakeClock
	late  time.Duration
}

func (l *lateTransport) Rank() int                                          { return 0 }
func (l *lateTransport) Size() int                                          { return 2 }
func (l *lateTransport) Left() allreduce.Peer                               { return allreduce.Peer{Rank: 1} }
func (l *lateTransport) Right() allreduce.Peer                              { return allreduce.Peer{Rank: 1} }
func (l *lateTransport) Close() error                                       { return nil }
func (l *lateTransport) Send(ctx context.Context, _ *allreduce.Frame) error { return ctx.Err() }

func (l *lateTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	l.clock.Advance(l.late)
	*f = allreduce.Frame{Step: 1, Length: 4, Kind: allreduce.Float64, Data: [][]byte{allreduce.EncodeForTest([]float64{1, 2})}}
	return nil
}

// TestLateFrameLeavesTheWaitWhole: a frame that arrives after the deadline
// does not end the rank's wait; the rank reports that it had been waiting
// since the collective began, so that the coordinator can tell it was
// starved (a rank that reported 0 s waited would look like one that was
// not).
func TestLateFrameLeavesTheWaitWhole(t *testing.T) {
	const deadline = 100 * time.Millisecond
	clock := allreducetest.NewFakeClock(epoch)
	ctx, cancel := allreduce.WithTimeout(clock, context.Background(), deadline)
	defer cancel()
	err := allreduce.New(&lateTransport{clock: clock, late: deadline}, allreduce.Config{Clock: clock}).
		AllReduce(ctx, 1, make([]float64, 4), allreduce.Sum)
	var e *allreduce.Error
	if !errors.As(err, &e) || e.Dir != "receive from" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want the deadline, waiting for the left-hand neighbour", err)
	}
	if e.Waiting != deadline || e.Received != 0 {
		t.Fatalf("waiting %v after %d frames: want %v after none", e.Waiting, e.Received, deadline)
	}
}

// toldLate is a context whose deadline has passed but which has not yet
// been told so, as a child context is for a moment while its parent
// cancels its children one by one.
type toldLate struct{ context.Context }

func (toldLate) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// abortingTransport is rank 0 of two whose left-hand neighbour has given up
// at the same deadline and says so.
type abortingTransport struct{ lateTransport }

func (a *abortingTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	*f = allreduce.Frame{Step: 1, Length: 4, Kind: allreduce.Float64, Abort: "its deadline passed", Origin: 1}
	return nil
}

// TestDeadlinePassedBeforeTold: a rank whose deadline has passed reports
// its deadline, even when its context has not been told yet and a
// neighbour's word that it gave up at the same deadline arrives first.
func TestDeadlinePassedBeforeTold(t *testing.T) {
	err := allreduce.New(&abortingTransport{}, allreduce.Config{}).
		AllReduce(toldLate{context.Background()}, 1, make([]float64, 4), allreduce.Sum)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want the deadline", err)
	}
}

// goneTransport is rank 0 of two whose left-hand neighbour gave up at the
// same deadline and ended its stream, which this rank's receive sees as
// the stream's end (a gRPC stream cancelled with the neighbour's context).
type goneTransport struct{ lateTransport }

func (g *goneTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	return errors.New("the neighbour ended its stream")
}

// TestDeadlinePassedBeforeToldStreamEnded: a rank whose deadline has passed
// reports its deadline, not the stream that the neighbour ended at the
// same deadline before this rank's context was told (a conformance run of
// the gRPC transport on a loaded machine saw rank 2 report "the neighbour
// ended its stream").
func TestDeadlinePassedBeforeToldStreamEnded(t *testing.T) {
	err := allreduce.New(&goneTransport{}, allreduce.Config{}).
		AllReduce(toldLate{context.Background()}, 1, make([]float64, 4), allreduce.Sum)
	var e *allreduce.Error
	if !errors.As(err, &e) || e.Dir != "receive from" || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "ended its stream") {
		t.Fatalf("error %v: want the deadline, waiting for the left-hand neighbour, with the stream's end", err)
	}
}

// healedTransport is rank 0 of two whose first frame comes after a long
// stall, still before the deadline (a partition healing as another rank
// gives up), and whose second never comes.
type healedTransport struct {
	lateTransport
	stall, deadline time.Duration
	calls           int
}

func (h *healedTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	h.calls++
	if h.calls == 1 {
		h.clock.Advance(h.stall)
		*f = allreduce.Frame{Step: 1, Length: 4, Kind: allreduce.Float64, Data: [][]byte{allreduce.EncodeForTest([]float64{1, 2})}}
		return nil
	}
	h.clock.Advance(h.deadline - h.stall)
	<-ctx.Done()
	return ctx.Err()
}

// TestLongestWaitIsReported: the rank reports its longest wait, and the
// frames it had before it, not the short wait after the stall ended.
func TestLongestWaitIsReported(t *testing.T) {
	const stall, deadline = 300 * time.Millisecond, 400 * time.Millisecond
	clock := allreducetest.NewFakeClock(epoch)
	ctx, cancel := allreduce.WithTimeout(clock, context.Background(), deadline)
	defer cancel()
	tr := &healedTransport{lateTransport: lateTransport{clock: clock}, stall: stall, deadline: deadline}
	err := allreduce.New(tr, allreduce.Config{Clock: clock}).AllReduce(ctx, 1, make([]float64, 4), allreduce.Sum)
	var e *allreduce.Error
	if !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want the deadline", err)
	}
	if e.Waiting != stall || e.Received != 0 {
		t.Fatalf("waiting %v after %d frames: want the stall, %v, after none", e.Waiting, e.Received, stall)
	}
}

// intoTransport receives into the ring's memory where it is offered, and
// counts the frames it put there.
type intoTransport struct {
	allreduce.Transport
	inPlace int
}

func (t *intoTransport) RecvInto(ctx context.Context, f *allreduce.Frame, dst []byte) error {
	if err := t.Recv(ctx, f); err != nil {
		return err
	}
	if f.Abort == "" && f.DataLen() == len(dst) {
		var b []byte
		for _, p := range f.Data {
			b = append(b, p...)
		}
		copy(dst, b)
		f.Data = [][]byte{dst}
		t.inPlace++
	}
	return nil
}

// TestAllGatherReceivesInPlace runs collectives over transports that can
// receive into the caller's memory: every all-gather frame of a float64
// or (even-length) float32 vector lands in the vector itself, no
// reduce-scatter frame does, and the sums are right.
func TestAllGatherReceivesInPlace(t *testing.T) {
	const n, length = 3, 3000 // 1000 values a chunk, 4 segments of 256 values
	for _, kind := range []string{"float64", "float32"} {
		t.Run(kind, func(t *testing.T) {
			mem := allreduce.NewMemRing(n)
			trs := make([]*intoTransport, n)
			errs := make([]error, n)
			results := make([][]float64, n)
			var wg sync.WaitGroup
			for r := range trs {
				trs[r] = &intoTransport{Transport: mem[r]}
				wg.Go(func() {
					ring := allreduce.New(trs[r], allreduce.Config{SegmentBytes: 256 * 8})
					v := make([]float64, length)
					for i := range v {
						v[i] = float64(r*length + i)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if kind == "float64" {
						errs[r] = ring.AllReduce(ctx, 1, v, allreduce.Sum)
					} else {
						v32 := make([]float32, 2*length)
						for i := range v32 {
							v32[i] = float32(v[i/2])
						}
						errs[r] = ring.AllReduceFloat32(ctx, 1, v32, allreduce.Sum)
						for i := range v {
							v[i] = float64(v32[2*i])
						}
					}
					results[r] = v
				})
			}
			wg.Wait()
			for r, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", r, err)
				}
			}
			for r, v := range results {
				if got, want := trs[r].inPlace, (n-1)*4; got != want {
					t.Errorf("rank %d received %d frames in place, want the %d of the all-gather", r, got, want)
				}
				for i, x := range v {
					if want := float64(n*i + length*n*(n-1)/2); x != want {
						t.Fatalf("rank %d element %d: %v, want %v", r, i, x, want)
					}
				}
			}
			for _, tr := range trs {
				tr.Close()
			}
		})
	}
}
