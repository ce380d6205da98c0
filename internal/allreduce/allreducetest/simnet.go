package allreducetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"ringtrain/internal/allreduce"
)

// SimNet is a simulated network under a ring of n ranks. Link r carries
// rank r's frames to rank r+1, the only direction a ring's frames travel,
// and each link can lose, delay, hold (a partition) or cut them, one
// direction at a time. Which frames a link loses and how long each takes
// are drawn from the seed, link by link in the order the frames are sent,
// so that on a FakeClock a run repeats exactly for a seed.
//
// A link holds at most Window frames sent and not yet received; a sender
// that finds it full blocks, as on a TCP connection whose window is full.
type SimNet struct {
	links []*link
	ts    []allreduce.Transport
}

// Window is the number of frames a link holds in flight.
const Window = 4

// ErrCut is wrapped by the errors of calls on a cut link.
var ErrCut = errors.New("link cut")

// NewSimNet returns a fault-free network of n ranks on clock.
func NewSimNet(n int, seed uint64, clock allreduce.Clock) *SimNet {
	s := &SimNet{links: make([]*link, n), ts: make([]allreduce.Transport, n)}
	for r := range s.links {
		s.links[r] = &link{from: r, to: (r + 1) % n, clock: clock, changed: make(chan struct{}),
			rng: rand.New(rand.NewPCG(seed, uint64(r)))}
	}
	for r := range s.ts {
		s.ts[r] = &simTransport{rank: r, n: n, out: s.links[r], in: s.links[(r+n-1)%n]}
	}
	return s
}

// Transports returns the ranks' transports, rank i at index i.
func (s *SimNet) Transports() []allreduce.Transport { return s.ts }

// Drop makes the link from rank from to its right-hand neighbour lose each
// frame sent from now on with probability p; the sender is not told.
func (s *SimNet) Drop(from int, p float64) {
	s.update(from, func(l *link) { l.drop = p })
}

// Delay makes each frame sent from now on from rank from take between lo
// and hi to reach its right-hand neighbour. Frames stay in order: one
// arrives no sooner than the frame sent before it.
func (s *SimNet) Delay(from int, lo, hi time.Duration) {
	s.update(from, func(l *link) { l.lo, l.hi = lo, max(lo, hi) })
}

// Partition holds every frame from rank from to its right-hand neighbour,
// those in flight included, until Heal: neither end is told, as when a
// network black-holes packets.
func (s *SimNet) Partition(from int) {
	s.update(from, func(l *link) { l.held = true })
}

// Heal ends a partition: the held frames arrive, in order, once due.
func (s *SimNet) Heal(from int) {
	s.update(from, func(l *link) { l.held = false })
}

// Cut breaks the link from rank from to its right-hand neighbour for good,
// as a reset connection: the frames in flight are lost, and every call on
// it, pending or later, at either end, fails with an error wrapping ErrCut
// that names the link.
func (s *SimNet) Cut(from int) {
	s.update(from, func(l *link) {
		l.queue = nil
		l.fail(fmt.Errorf("link rank %d → rank %d: %w", l.from, l.to, ErrCut), true)
	})
}

func (s *SimNet) update(from int, f func(*link)) {
	l := s.links[from]
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
	l.notify()
}

// link is the one-way connection from rank from to rank to.
type link struct {
	from, to int
	clock    allreduce.Clock

	mu      sync.Mutex
	queue   []simFrame    // sent, not yet received, in order
	changed chan struct{} // closed and replaced on every change
	err     error         // why the link no longer carries frames
	cut     bool          // err is a cut: frames are lost, not delivered
	held    bool
	drop    float64
	lo, hi  time.Duration
	lastDue time.Time
	rng     *rand.Rand
}

type simFrame struct {
	f   allreduce.Frame
	due time.Time
}

// notify wakes the calls waiting on the link; l.mu is held.
func (l *link) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *link) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
}

// fail stops the link; l.mu is held. The first failure stays, except that
// a cut overrides a close (the frames a closed link still delivers are
// lost when it is cut).
func (l *link) fail(err error, cut bool) {
	if l.err == nil || (cut && !l.cut) {
		l.err, l.cut = err, cut
	}
}

func (l *link) send(ctx context.Context, f *allreduce.Frame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var data []byte
	for _, part := range f.Data {
		data = append(data, part...)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.err == nil && len(l.queue) >= Window {
		if err := l.wait(ctx, time.Time{}); err != nil {
			return err
		}
	}
	if l.err != nil {
		return l.err
	}
	// Two draws a frame, whatever the settings, so that the frames'
	// fates do not shift when a setting changes.
	lost, jitter := l.rng.Float64() < l.drop, l.rng.Float64()
	if lost {
		return nil
	}
	due := l.clock.Now().Add(l.lo + time.Duration(jitter*float64(l.hi-l.lo)))
	if due.Before(l.lastDue) {
		due = l.lastDue
	}
	l.lastDue = due
	g := *f
	g.Data = [][]byte{data}
	l.queue = append(l.queue, simFrame{f: g, due: due})
	l.notify()
	return nil
}

func (l *link) recv(ctx context.Context, f *allreduce.Frame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.cut {
			return l.err
		}
		now := l.clock.Now()
		if !l.held && len(l.queue) > 0 && !now.Before(l.queue[0].due) {
			*f = l.queue[0].f
			l.queue = l.queue[1:]
			l.notify()
			return nil
		}
		if l.err != nil { // closed: what was due has been delivered
			return l.err
		}
		var due time.Time
		if !l.held && len(l.queue) > 0 {
			due = l.queue[0].due
		}
		if err := l.wait(ctx, due); err != nil {
			return err
		}
	}
}

// wait waits, with l.mu released, for a change to the link, for the time
// due unless it is zero, or for ctx to end.
func (l *link) wait(ctx context.Context, due time.Time) error {
	changed := l.changed
	stop := func() bool { return false }
	if !due.IsZero() {
		d := due.Sub(l.clock.Now())
		if d <= 0 {
			return nil
		}
		stop = l.clock.AfterFunc(d, l.wake)
	}
	l.mu.Unlock()
	defer l.mu.Lock()
	defer stop()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// simTransport is one rank's end of a SimNet.
type simTransport struct {
	rank, n int
	out, in *link
}

func (t *simTransport) Rank() int             { return t.rank }
func (t *simTransport) Size() int             { return t.n }
func (t *simTransport) Left() allreduce.Peer  { return allreduce.Peer{Rank: (t.rank + t.n - 1) % t.n} }
func (t *simTransport) Right() allreduce.Peer { return allreduce.Peer{Rank: (t.rank + 1) % t.n} }

func (t *simTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	return t.out.send(ctx, f)
}

func (t *simTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	return t.in.recv(ctx, f)
}

// Close breaks both the rank's links, as a dying process breaks its
// streams: its right-hand neighbour still receives the frames it sent
// that are due, then the calls of both neighbours fail.
func (t *simTransport) Close() error {
	err := fmt.Errorf("rank %d: %w", t.rank, allreduce.ErrClosed)
	for _, l := range []*link{t.out, t.in} {
		l.mu.Lock()
		l.fail(err, false)
		l.notify()
		l.mu.Unlock()
	}
	return nil
}
