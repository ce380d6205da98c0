// Package allreduce implements the bandwidth-optimal ring all-reduce over a
// small Transport interface.
//
// The algorithm knows ranks and chunk indices, not sockets: it runs over
// in-memory pipes in tests (NewMemRing) and over gRPC streams in production
// (package ringrpc), and one conformance suite (package allreducetest) checks
// both.
//
// A vector of length L on N ranks is cut into N chunks. In N−1
// reduce-scatter rounds each rank sends one chunk to its right-hand
// neighbour and adds the chunk arriving from its left, so that afterwards
// rank r holds the complete sum of chunk r+1; N−1 all-gather rounds then
// circulate the finished chunks. Each rank sends 2(N−1)/N·L values in all,
// the minimum for an all-reduce. Every chunk is further cut into segments,
// and a segment is forwarded as soon as it has arrived and been added, so
// sending and receiving overlap along the ring instead of waiting for whole
// chunks.
//
// Floating-point sums depend on their order; here the order is fixed by the
// ring, so every rank ends with the same bits (each chunk's final value is
// computed by one rank and copied to the others), and a run repeats exactly.
package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Op is the reduction applied element-wise.
type Op int

const (
	// Sum leaves every rank with the sum of the vectors.
	Sum Op = iota
	// Average leaves every rank with the sum divided by the number of ranks.
	Average
)

// Config tunes a Ring.
type Config struct {
	// SegmentBytes is the largest frame payload. Smaller segments start the
	// pipeline sooner; larger ones cost less per byte. Default 256 KiB.
	SegmentBytes int
	// Phases, when not nil, is called after every successful collective
	// with the times its reduce-scatter and all-gather phases ended on this
	// rank (the collective started at start). It runs on the caller's
	// goroutine and must not block.
	Phases func(step uint64, start, scattered, gathered time.Time)
	// Clock is the time the ring reads; default the system clock.
	Clock Clock
}

// DefaultConfig returns the defaults: 256 KiB segments, the system clock.
func DefaultConfig() Config { return Config{SegmentBytes: 256 << 10, Clock: systemClock{}} }

// Ring runs collectives over one transport. It is not safe for concurrent
// use: collectives on a ring run one after another, with increasing steps.
type Ring struct {
	t   Transport
	cfg Config
	// sendBuf holds the encoded segment being sent on big-endian machines;
	// part is the one-part payload of a frame being sent.
	sendBuf []byte
	part    [1][]byte
	// frames counts the frames received in the collectives that completed.
	frames uint64
}

// New returns a Ring over t. Zero fields of cfg take their defaults.
func New(t Transport, cfg Config) *Ring {
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultConfig().SegmentBytes
	}
	cfg.SegmentBytes = max(cfg.SegmentBytes/8*8, 8)
	if cfg.Clock == nil {
		cfg.Clock = DefaultConfig().Clock
	}
	return &Ring{t: t, cfg: cfg}
}

// Transport returns the ring's transport.
func (r *Ring) Transport() Transport { return r.t }

// Frames is the number of frames this rank received in the ring's
// collectives that completed. A caller that runs several collectives a
// step (gradient buckets) can add the step's completed ones' to an
// Error's Received, so that ranks a collective apart compare as ranks of
// one collective do.
func (r *Ring) Frames() uint64 { return r.frames }

// Error is a failed collective: which step, which phase and round, and which
// neighbour was involved.
type Error struct {
	Step  uint64
	Phase string // "handshake", "reduce-scatter" or "all-gather"
	Round int
	Peer  Peer
	Dir   string // "send to" or "receive from"
	// Waiting is the longest this rank waited for a frame from its
	// left-hand neighbour in the collective, the wait in progress when the
	// collective ended included (by its deadline, a neighbour's failure,
	// the caller's cancellation), and Received the frames it had received
	// when that wait began; Waiting is zero when the rank failed without
	// waiting (a bad frame). The longest wait, not the last: a stalled link
	// that lets its frames through just before this rank's deadline (a
	// partition healing as the first rank gives up) still shows where the
	// rank stalled. A rank stuck waiting for a frame leaves its right-hand
	// neighbour stuck waiting for a later one (it forwards what it
	// receives), so in a stalled ring the waiting rank that received least
	// was starved first, and the neighbour it waited for is the straggler.
	Received int
	Waiting  time.Duration
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("allreduce: step %d, %s round %d: %s %v: %v", e.Step, e.Phase, e.Round, e.Dir, e.Peer, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrAborted is wrapped by the error of a rank whose collective was given up
// by another rank.
var ErrAborted = errors.New("aborted by another rank")

// AllReduce replaces v, on every rank, with the element-wise sum or average
// of the vectors all ranks passed for the same step. All ranks must pass
// vectors of the same length and the same step; a rank that finds otherwise
// fails at once and tells the others, which fail too. ctx bounds the whole
// call: on a deadline the error names the neighbour that was being waited
// for. After an error the transport is broken (see Transport).
func (r *Ring) AllReduce(ctx context.Context, step uint64, v []float64, op Op) error {
	return r.run(ctx, step, &floatVector{v: v, average: op == Average, n: r.t.Size()})
}

// AllReduceFloat32 is AllReduce for float32 values, which travel in half
// the bytes; sums are rounded to float32 at every addition.
func (r *Ring) AllReduceFloat32(ctx context.Context, step uint64, v []float32, op Op) error {
	return r.run(ctx, step, &float32Vector{v: v, average: op == Average, n: r.t.Size()})
}

// AllReduceInt64 replaces v, on every rank, with the element-wise sum of the
// vectors all ranks passed for the same step. Integer addition is exact and
// associative, so the result does not depend on the ring's size or order. A
// partial sum that overflows int64 fails the collective (ErrOverflow) on the
// rank that computed it, and every other rank with it: never a silently
// wrong sum. (Which partial sums exist depends on the ring, so inputs whose
// total fits but whose partial sums may not should be kept within bounds,
// as package fixedpoint does.)
func (r *Ring) AllReduceInt64(ctx context.Context, step uint64, v []int64) error {
	return r.run(ctx, step, &intVector{v: v})
}

// ErrOverflow is wrapped by the error of an integer sum that overflowed.
var ErrOverflow = errors.New("int64 overflow")

// run runs one collective on v.
func (r *Ring) run(ctx context.Context, step uint64, v vector) error {
	n := r.t.Size()
	if n == 1 {
		return ctx.Err()
	}
	p := newPlan(v.len(), n, r.t.Rank(), r.cfg.SegmentBytes/8)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// ready tells the sender that a segment has been received, sent that a
	// reduce-scatter segment has gone out (see receiveAll).
	ready := make(chan struct{}, p.rounds*p.segments)
	sent := make(chan struct{}, (p.n-1)*p.segments)
	var wg sync.WaitGroup
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if sendErr = r.sendAll(ctx, step, v, p, ready, sent); sendErr != nil {
			cancel(sendErr)
		}
	}()
	start := r.cfg.Clock.Now()
	scattered, err := r.receiveAll(ctx, step, v, p, ready, sent)
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	if err == nil {
		err = sendErr
	}
	if err != nil {
		r.tellRight(step, v, err)
		return err
	}
	r.frames += uint64(p.rounds * p.segments)
	if r.cfg.Phases != nil {
		r.cfg.Phases(step, start, scattered, r.cfg.Clock.Now())
	}
	return nil
}

// plan is the chunk and segment layout of one collective.
type plan struct {
	length, n, rank int
	segments        int // segments per chunk
	rounds          int // 2(n−1)
}

func newPlan(length, n, rank, segValues int) plan {
	maxChunk := (length + n - 1) / n
	segs := max(1, (maxChunk+segValues-1)/segValues)
	return plan{length: length, n: n, rank: rank, segments: segs, rounds: 2 * (n - 1)}
}

// segment returns the bounds of segment s of chunk c.
func (p plan) segment(c, s int) (lo, hi int) {
	cLo, cHi := c*p.length/p.n, (c+1)*p.length/p.n
	size := cHi - cLo
	return cLo + s*size/p.segments, cLo + (s+1)*size/p.segments
}

func (p plan) mod(i int) int { return ((i % p.n) + p.n) % p.n }

// sendChunk and recvChunk are the chunks a rank sends and receives in a round.
func (p plan) sendChunk(round int) int {
	if round < p.n-1 {
		return p.mod(p.rank - round)
	}
	return p.mod(p.rank + 1 - (round - (p.n - 1)))
}

func (p plan) recvChunk(round int) int {
	if round < p.n-1 {
		return p.mod(p.rank - round - 1)
	}
	return p.mod(p.rank - (round - (p.n - 1)))
}

func (p plan) phase(round int) (string, int) {
	if round < p.n-1 {
		return "reduce-scatter", round
	}
	return "all-gather", round - (p.n - 1)
}

// sendAll sends every segment of every round, each as soon as the segment
// it forwards has been received (rounds after the first forward what arrived
// in the round before), and tells sent of each reduce-scatter segment once
// Send is done with it.
func (r *Ring) sendAll(ctx context.Context, step uint64, v vector, p plan, ready <-chan struct{}, sent chan<- struct{}) error {
	f := Frame{Step: step, Length: uint64(v.len()), Kind: v.kind()}
	for round := 0; round < p.rounds; round++ {
		c := p.sendChunk(round)
		for s := 0; s < p.segments; s++ {
			if round > 0 {
				select {
				case <-ready:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			lo, hi := p.segment(c, s)
			r.part[0] = v.wire(&r.sendBuf, lo, hi)
			f.Seq, f.Data = uint32(round*p.segments+s), r.part[:]
			if err := r.t.Send(ctx, &f); err != nil {
				phase, pr := p.phase(round)
				return &Error{Step: step, Phase: phase, Round: pr, Peer: r.t.Right(), Dir: "send to", Err: err}
			}
			if round < p.n-1 {
				sent <- struct{}{}
			}
		}
	}
	return nil
}

// receiveAll receives every segment, adds (reduce-scatter) or copies
// (all-gather) it into v, and signals the sender. It returns when the
// reduce-scatter phase ended.
//
// All-gather round n−1+k overwrites the chunk the sender read in
// reduce-scatter round k, so segment i of the all-gather is received only
// once the sender has sent reduce-scatter segment i (a token on sent). In
// a ring of honest ranks that frame cannot arrive sooner, since it carries
// a sum of this rank's segment; but a neighbour that sends ahead (a
// faulty rank, a test's fake one) must not make the receive write v while
// Send still reads it: a data race, which sends the all-gather's values as
// this rank's own.
func (r *Ring) receiveAll(ctx context.Context, step uint64, v vector, p plan, ready chan<- struct{}, sent <-chan struct{}) (time.Time, error) {
	var f Frame
	var scattered time.Time
	received := 0
	// Since the last frame came (or the collective began): how long this
	// rank has been waiting for its left-hand neighbour, even across a
	// receive that fails at once on a transport another call broke; and
	// the longest wait that ended in a frame, with the frames received
	// before it.
	clock := r.cfg.Clock
	waitFrom := clock.Now()
	var longest time.Duration
	stalledAt := 0
	// stall is the longest wait, the one in progress included, and the
	// frames received when it began.
	stall := func() (time.Duration, int) {
		if w := clock.Now().Sub(waitFrom); w >= longest {
			return w, received
		}
		return longest, stalledAt
	}
	into, _ := r.t.(RecvIntoer)
	for round := 0; round < p.rounds; round++ {
		c := p.recvChunk(round)
		phase, pr := p.phase(round)
		fail := func(err error) *Error {
			return &Error{Step: step, Phase: phase, Round: pr, Peer: r.t.Left(), Dir: "receive from", Received: received, Err: err}
		}
		// ended is the error of a collective that ended while this rank
		// waited for a frame: err, or the cause that ended it.
		ended := func(err error) error {
			waited, frames := stall()
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				if o := over(ctx, clock.Now()); o != nil {
					// The deadline has passed, and this rank's context
					// is not told yet: a neighbour that gave up at the
					// same deadline may end its stream first. The
					// deadline is why the collective ended.
					err = fmt.Errorf("%w (%v)", o, err)
				}
			}
			if cause := context.Cause(ctx); ctx.Err() != nil && cause != ctx.Err() && !echoes(cause, err) {
				// The sender failed first, or the caller gave up: that
				// is the error, and this rank was waiting meanwhile.
				err = cause
				if se := (*Error)(nil); errors.As(err, &se) && se.Dir == "send to" {
					se.Received, se.Waiting = frames, waited
					return se
				}
			}
			e := fail(err)
			e.Received, e.Waiting = frames, waited
			return e
		}
		for s := 0; s < p.segments; s++ {
			if round >= p.n-1 {
				select {
				case <-sent:
				case <-ctx.Done():
					return scattered, ended(ctx.Err())
				}
			}
			lo, hi := p.segment(c, s)
			// An all-gather frame lands in v itself where the transport
			// can read it there and v's memory is its wire format.
			var dst []byte
			if vw, ok := v.(viewer); ok && into != nil && round >= p.n-1 {
				dst = vw.view(lo, hi)
			}
			var err error
			if dst != nil {
				err = into.RecvInto(ctx, &f, dst)
			} else {
				err = r.t.Recv(ctx, &f)
			}
			if err != nil {
				return scattered, ended(err)
			}
			if err := over(ctx, clock.Now()); err != nil {
				// The frame came only after the collective had ended (its
				// deadline passed, or the sender failed): this rank was
				// still waiting for it then, and it does not count (even
				// when it is another rank's word that it gave up at the
				// same deadline).
				return scattered, ended(err)
			}
			if err := check(&f, step, v, uint32(round*p.segments+s), hi-lo, r.t.Left()); err != nil {
				e := fail(err)
				if f.Abort != "" {
					e.Waiting, e.Received = stall() // it waited, and got word that the ring gave up
				}
				return scattered, e
			}
			now := clock.Now()
			if w := now.Sub(waitFrom); w > longest {
				longest, stalledAt = w, received
			}
			received++
			waitFrom = now
			if round < p.n-1 {
				if err := v.add(lo, hi, f.Data); err != nil {
					return scattered, fail(err)
				}
				if round == p.n-2 {
					v.finish(lo, hi)
					scattered = clock.Now()
				}
			} else if !inPlace(&f, dst) {
				v.set(lo, hi, f.Data)
			}
			if round < p.rounds-1 {
				ready <- struct{}{}
			}
		}
	}
	return scattered, nil
}

// inPlace reports whether f's data is dst itself (RecvInto read it there).
func inPlace(f *Frame, dst []byte) bool {
	return len(dst) > 0 && len(f.Data) == 1 && len(f.Data[0]) == len(dst) && &f.Data[0][0] == &dst[0]
}

// over returns why the collective has ended, or nil: ctx's cause, or its
// deadline once passed, even before ctx is told (a parent context cancels
// its children one by one, so a rank whose context was told first may
// already have sent word of it). now is the time on the ring's clock.
func over(ctx context.Context, now time.Time) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if d, ok := ctx.Deadline(); ok && !now.Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// echoes reports whether the sender's error only echoes a receive's: the
// receive broke the transport, and the send that came after failed on the
// broken transport (and may have cancelled the collective before the
// receive returned). The receive's error is then the one that names the
// fault and the peer.
func echoes(sendErr, recvErr error) bool {
	return errors.Is(sendErr, ErrBroken) && !errors.Is(recvErr, ErrBroken) && !errors.Is(recvErr, context.Canceled)
}

// abortError is the error of a rank that received an abort frame.
type abortError struct {
	origin int
	reason string
}

func (e *abortError) Error() string        { return fmt.Sprintf("rank %d gave up: %s", e.origin, e.reason) }
func (e *abortError) Is(target error) bool { return target == ErrAborted }

// check validates a received frame against what this rank expects.
func check(f *Frame, step uint64, v vector, seq uint32, values int, left Peer) error {
	switch {
	case f.Abort != "":
		return &abortError{origin: f.Origin, reason: f.Abort}
	case f.Step != step:
		return fmt.Errorf("%v is at step %d, this rank at step %d", left, f.Step, step)
	case f.Length != uint64(v.len()) || f.Kind != v.kind():
		return fmt.Errorf("%v reduces a vector of length %d of %v, this rank one of length %d of %v", left, f.Length, f.Kind, v.len(), v.kind())
	case f.Seq != seq:
		return fmt.Errorf("frame %d arrived where frame %d was due", f.Seq, seq)
	case f.DataLen() != 8*values:
		return fmt.Errorf("frame %d carries %d bytes, want %d", f.Seq, f.DataLen(), 8*values)
	}
	return nil
}

// tellRight makes a best-effort attempt to pass the reason for giving up to
// the right-hand neighbour, so that the error it reports names the cause
// rather than a broken stream. An abort received from the left is passed on
// unchanged until it reaches the rank it started from.
func (r *Ring) tellRight(step uint64, v vector, cause error) {
	f := &Frame{Step: step, Length: uint64(v.len()), Kind: v.kind(), Abort: cause.Error(), Origin: r.t.Rank()}
	if ab := (*abortError)(nil); errors.As(cause, &ab) {
		if ab.origin == r.t.Right().Rank {
			return
		}
		f.Abort, f.Origin = ab.reason, ab.origin
	}
	ctx, cancel := WithTimeout(r.cfg.Clock, context.Background(), abortTimeout)
	defer cancel()
	_ = r.t.Send(ctx, f)
}

// abortTimeout bounds the attempt to pass an abort on.
const abortTimeout = 500 * time.Millisecond
