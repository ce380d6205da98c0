package allreducetest

import (
	"slices"
	"sync"
	"time"
)

// FakeClock is an allreduce.Clock whose time moves only when a test moves
// it (Advance, Step), so that deadlines (allreduce.WithTimeout), stalls
// and delays play out the same on every run and take no real time. Its
// timers' functions run on the goroutine that moves the clock, in the
// order they fall due, before the move returns.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int // orders timers that fall due together
	timers []*fakeTimer
}

type fakeTimer struct {
	due time.Time
	seq int
	f   func()
}

// NewFakeClock returns a clock that reads start until moved.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to run once the clock has moved d on; f runs
// at once, on the caller's goroutine, when d is not positive.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	if d <= 0 {
		f()
		return func() bool { return false }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{due: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// Advance moves the clock d on, running the functions of the timers that
// fall due on the way, each with the clock at its due time.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for c.fireNext(end) {
	}
	c.mu.Lock()
	c.now = end
	c.mu.Unlock()
}

// Step moves the clock to the earliest pending timer and runs it (and any
// other due at the same time). It reports false, without moving the
// clock, when no timer is pending.
func (c *FakeClock) Step() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	due := c.earliest().due
	c.mu.Unlock()
	for c.fireNext(due) {
	}
	return true
}

// earliest returns the timer to fire next; c.mu is held and c.timers is
// not empty.
func (c *FakeClock) earliest() *fakeTimer {
	return slices.MinFunc(c.timers, func(a, b *fakeTimer) int {
		if n := a.due.Compare(b.due); n != 0 {
			return n
		}
		return a.seq - b.seq
	})
}

// fireNext runs the earliest timer due by end, with the clock at its due
// time, and reports whether there was one.
func (c *FakeClock) fireNext(end time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	t := c.earliest()
	if t.due.After(end) {
		c.mu.Unlock()
		return false
	}
	c.timers = slices.DeleteFunc(c.timers, func(u *fakeTimer) bool { return u == t })
	c.now = t.due
	c.mu.Unlock()
	t.f()
	return true
}
