package allreduce

import (
	"context"
	"time"
)

// Clock is the time a Ring reads: when a collective and each wait for a
// frame begin and end, whether the caller's deadline has passed, and how
// long to try passing an abort on. The default is the system clock; tests
// pass a fake one (allreducetest.FakeClock) so that deadlines and stalls
// play out without sleeping. The caller's deadline is compared with this
// clock's time: with a fake clock, give contexts whose deadlines are on it
// (WithTimeout).
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, unless the returned stop is
	// called first; stop reports whether it prevented the call. f must
	// not block.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// systemClock is the time package's clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// WithTimeout is context.WithTimeout on c's time: the context's deadline
// is d after c's time, and it ends, with context.DeadlineExceeded, when c
// reaches it. Contexts derived from it end then too, with the deadline as
// their cause (context.Cause).
func WithTimeout(c Clock, parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	inner, cancel := context.WithCancelCause(parent)
	ctx := &deadlineCtx{Context: inner, deadline: c.Now().Add(d)}
	stop := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// deadlineCtx is a cancellable context with a deadline on a Clock.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}
