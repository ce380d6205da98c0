package allreduce_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
)

// The tests in this file play faults out on a simulated network
// (allreducetest.SimNet) and a fake clock, inside a synctest bubble: the
// clock moves only when every goroutine is blocked, so a stall, a
// partition or a deadline takes no real time and ends the same way on every
// run, and a ring that would wait forever fails the test instead of
// hanging it. synctest.Test also fails a test that leaves a goroutine
// behind.

// epoch is where the fake clocks start.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// abortGrace is how long a rank that gave up tries to pass word on
// (allreduce's abortTimeout).
const abortGrace = 500 * time.Millisecond

// simRing is a ring of ranks on a SimNet and a FakeClock.
type simRing struct {
	clock *allreducetest.FakeClock
	net   *allreducetest.SimNet
	ts    []allreduce.Transport
	rings []*allreduce.Ring
}

func newSimRing(n int, seed uint64, segmentBytes int) *simRing {
	s := &simRing{clock: allreducetest.NewFakeClock(epoch)}
	s.net = allreducetest.NewSimNet(n, seed, s.clock)
	s.ts = s.net.Transports()
	for _, tr := range s.ts {
		s.rings = append(s.rings, allreduce.New(tr, allreduce.Config{SegmentBytes: segmentBytes, Clock: s.clock}))
	}
	return s
}

// collective runs one all-reduce of inputs (summed in place) on every rank
// with a deadline on the fake clock, rank r starting once the clock has
// moved start[r] on (a process frozen that long; start may be nil), each
// rank closing its transport after a failure as a worker does. It moves
// the clock whenever every goroutine is blocked, to its next timer, until
// every rank has returned, and returns the ranks' errors and how long on
// the fake clock that took. It fails the test if the ranks block with no
// timer pending: a real ring would hang there.
func (s *simRing) collective(t *testing.T, step uint64, inputs [][]float64, deadline time.Duration, start []time.Duration) ([]error, time.Duration) {
	t.Helper()
	begin := s.clock.Now()
	errs := make([]error, len(s.rings))
	var wg sync.WaitGroup
	for r, ring := range s.rings {
		thawed := make(chan struct{})
		if r >= len(start) || start[r] == 0 {
			close(thawed)
		} else {
			s.clock.AfterFunc(start[r], func() { close(thawed) })
		}
		wg.Go(func() {
			<-thawed
			ctx, cancel := allreduce.WithTimeout(s.clock, context.Background(), deadline)
			defer cancel()
			if errs[r] = ring.AllReduce(ctx, step, inputs[r], allreduce.Sum); errs[r] != nil {
				s.ts[r].Close()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		synctest.Wait()
		select {
		case <-done:
			return errs, s.clock.Now().Sub(begin)
		default:
		}
		if !s.clock.Step() {
			t.Fatalf("step %d: every rank is blocked and no timer is pending: the ring would hang", step)
		}
	}
}

// inputsFor returns n ranks' vectors of length values, and their sum.
func inputsFor(n, length int, seed uint64) (inputs [][]float64, sum []float64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	inputs = make([][]float64, n)
	for r := range inputs {
		inputs[r] = make([]float64, length)
		for i := range inputs[r] {
			inputs[r][i] = float64(rng.IntN(1000)) // small integers: every order sums exactly
		}
	}
	sum = make([]float64, length)
	for _, in := range inputs {
		for i, x := range in {
			sum[i] += x
		}
	}
	return inputs, sum
}

// checkSums fails unless rank r's vector, for each r in ranks, is sum.
func checkSums(t *testing.T, inputs [][]float64, sum []float64, ranks ...int) {
	t.Helper()
	for _, r := range ranks {
		if !slices.Equal(inputs[r], sum) {
			t.Fatalf("rank %d holds a wrong sum", r)
		}
	}
}

// starvedFirst returns the error, among those of ranks that were waiting
// for their left-hand neighbour when the collective ended, of the one that
// had received the fewest frames: the rank starved first, whose left-hand
// neighbour is the straggler (see allreduce.Error).
func starvedFirst(errs []error) *allreduce.Error {
	var first *allreduce.Error
	for _, err := range errs {
		var e *allreduce.Error
		if errors.As(err, &e) && e.Dir == "receive from" && e.Waiting > 0 && (first == nil || e.Received < first.Received) {
			first = e
		}
	}
	return first
}

// TestStallNamesTheStraggler: whether rank 1 of 4 is frozen past the
// deadline (a stopped process), cut off on its outgoing link by a
// partition, or behind a link slower than the deadline, every rank fails
// within the deadline and the abort's grace, and the rank starved first
// waited the whole deadline for rank 1 without a frame: the errors name
// the straggler.
func TestStallNamesTheStraggler(t *testing.T) {
	const n, deadline = 4, time.Second
	for _, tc := range []struct {
		name  string
		fault func(s *simRing)
		start []time.Duration
		took  time.Duration // the most the collective may take
	}{
		{name: "frozen rank", start: []time.Duration{1: deadline + deadline/2}, took: deadline + deadline/2},
		{name: "partition", fault: func(s *simRing) { s.net.Partition(1) }, took: deadline + abortGrace},
		{name: "slow link", fault: func(s *simRing) { s.net.Delay(1, 2*deadline, 2*deadline) }, took: deadline + abortGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimRing(n, 1, 0)
				inputs, sum := inputsFor(n, 100, 1)
				if errs, _ := s.collective(t, 1, inputs, deadline, nil); slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
					t.Fatalf("undisturbed collective: %v", errs)
				}
				checkSums(t, inputs, sum, 0, 1, 2, 3)
				if tc.fault != nil {
					tc.fault(s)
				}
				errs, took := s.collective(t, 2, inputs, deadline, tc.start)
				for r, err := range errs {
					t.Logf("rank %d: %v", r, err)
					if err == nil {
						t.Fatalf("rank %d succeeded", r)
					}
				}
				if took > tc.took {
					t.Fatalf("the ranks took %v to fail, want at most %v", took, tc.took)
				}
				e := starvedFirst(errs)
				if e == nil || e.Peer.Rank != 1 || e.Received != 0 || e.Waiting != deadline || !errors.Is(e, context.DeadlineExceeded) {
					t.Fatalf("rank starved first: %v (waiting %v after %d frames); want one that waited %v for rank 1 after none", e, e.Waiting, e.Received, deadline)
				}
			})
		})
	}
}

// TestHealedPartitionCompletes: a partition that heals before the
// deadline delays the collective without failing it, and the held frames
// arrive in order: every rank ends with the exact sum when the link heals.
func TestHealedPartitionCompletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, heal = 4, 600 * time.Millisecond
		s := newSimRing(n, 1, 64) // many frames, more than a link holds
		inputs, sum := inputsFor(n, 1000, 2)
		s.net.Partition(2)
		s.clock.AfterFunc(heal, func() { s.net.Heal(2) })
		errs, took := s.collective(t, 1, inputs, time.Second, nil)
		for r, err := range errs {
			if err != nil {
				t.Fatalf("rank %d: %v", r, err)
			}
		}
		checkSums(t, inputs, sum, 0, 1, 2, 3)
		if took != heal {
			t.Fatalf("the collective took %v, want %v, when the partition healed", took, heal)
		}
	})
}

// TestCutLinkFailsNamingThePeer: a link cut during training fails the
// next collective on every rank at once, long before the deadline, and an
// end of the link names the other.
func TestCutLinkFailsNamingThePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, deadline = 4, time.Second
		s := newSimRing(n, 1, 64)
		inputs, _ := inputsFor(n, 1000, 3)
		if errs, _ := s.collective(t, 1, inputs, deadline, nil); slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
			t.Fatalf("undisturbed collective: %v", errs)
		}
		s.net.Cut(1)
		errs, took := s.collective(t, 2, inputs, deadline, nil)
		for r, err := range errs {
			t.Logf("rank %d: %v", r, err)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("rank %d: %v; want a failure before the deadline", r, err)
			}
		}
		if took >= deadline {
			t.Fatalf("the ranks took %v to fail, want less than the deadline", took)
		}
		// The first call to fail is one on the cut link, and the rank that
		// made it reports the cut; the others may fail on its echoes
		// first (a neighbour that closed its streams), as in production.
		sender := errors.Is(errs[1], allreducetest.ErrCut) && strings.Contains(errs[1].Error(), "send to rank 2")
		receiver := errors.Is(errs[2], allreducetest.ErrCut) && strings.Contains(errs[2].Error(), "receive from rank 1")
		if !sender && !receiver {
			t.Fatalf("neither end of the cut link reports the cut: rank 1: %v; rank 2: %v", errs[1], errs[2])
		}
	})
}

// TestLossyLinkFailsRepeatably: frames lost on a link fail the rank behind
// it, naming the neighbour and the missing frame, and never leave a rank
// with a wrong sum; the same seed loses the same frames, so the failure
// repeats exactly.
func TestLossyLinkFailsRepeatably(t *testing.T) {
	const n = 3
	run := func(seed uint64) string {
		var msg string
		synctest.Test(t, func(t *testing.T) {
			s := newSimRing(n, seed, 64)
			s.net.Drop(0, 0.02)
			inputs, sum := inputsFor(n, 1000, 4)
			errs, _ := s.collective(t, 1, inputs, time.Second, nil)
			for r, err := range errs {
				if err == nil {
					checkSums(t, inputs, sum, r)
				}
			}
			var e *allreduce.Error
			if !errors.As(errs[1], &e) || e.Peer.Rank != 0 || e.Dir != "receive from" {
				t.Fatalf("rank 1, behind the lossy link: %v; want a failure receiving from rank 0", errs[1])
			}
			msg = errs[1].Error()
		})
		return msg
	}
	first := run(7)
	if !strings.Contains(first, "arrived where frame") {
		t.Fatalf("rank 1: %s; want the missing frame named", first)
	}
	if again := run(7); again != first {
		t.Fatalf("seed 7 failed with %q, then with %q", first, again)
	}
}

// TestDelayedLinksSumExactly: links that delay every frame by a different,
// seeded time leave the sums bit for bit what an undelayed ring computes,
// and a seed's run takes the same time on the fake clock every time.
func TestDelayedLinksSumExactly(t *testing.T) {
	const n = 4
	run := func(seed uint64, delayed bool) ([][]float64, time.Duration) {
		var out [][]float64
		var took time.Duration
		synctest.Test(t, func(t *testing.T) {
			s := newSimRing(n, seed, 64)
			if delayed {
				for r := range n {
					s.net.Delay(r, time.Millisecond, 20*time.Millisecond)
				}
			}
			rng := rand.New(rand.NewPCG(seed, 1))
			inputs := make([][]float64, n)
			for r := range inputs {
				inputs[r] = make([]float64, 777)
				for i := range inputs[r] {
					inputs[r][i] = rng.NormFloat64() * math.Exp2(float64(rng.IntN(40)-20))
				}
			}
			var errs []error
			if errs, took = s.collective(t, 1, inputs, time.Minute, nil); slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
				t.Fatalf("errors %v", errs)
			}
			out = inputs
		})
		return out, took
	}
	want, _ := run(5, false)
	got, took := run(5, true)
	for r := range got {
		for i := range got[r] {
			if math.Float64bits(got[r][i]) != math.Float64bits(want[r][i]) {
				t.Fatalf("rank %d element %d: %v delayed, %v undelayed", r, i, got[r][i], want[r][i])
			}
		}
	}
	if _, again := run(5, true); again != took || took == 0 {
		t.Fatalf("seed 5 took %v, then %v", took, again)
	}
	t.Logf("the delayed collective took %v on the fake clock", took)
}
