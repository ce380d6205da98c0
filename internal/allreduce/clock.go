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
// (FakeClock.WithTimeout).
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

// withTimeout is context.WithTimeout on c's time: the context ends with
// cause context.DeadlineExceeded once d has passed on c.
func withTimeout(c Clock, parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}
