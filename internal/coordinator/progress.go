package coordinator

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	pb "ringtrain/proto"
)

// progress shows a job's progress: a redrawn bar on a terminal, plain lines
// (ten per epoch, and one per evaluation) anywhere else. It is used by the
// supervise loop only.
type progress struct {
	w           io.Writer
	tty         bool
	steps, spe  uint64
	epochs      int
	globalBatch int
	// started is when the first ring was assigned; trainStart when rank 0
	// began its first step (on this clock: the arrival of its first report
	// less the training time it reports), which leaves out start-up (the
	// workers fetching their shards and the state).
	started, trainStart time.Time
	first               uint64 // the step training started (or resumed) at
	lastDraw            time.Time
	drawn               bool
	// heldOut names the evaluation set: test, or validation for a
	// cross-validation fold.
	heldOut string
}

func newProgress(w io.Writer, job *pb.JobSpec, globalBatch int, heldOut string) *progress {
	if w == nil {
		w = io.Discard
	}
	p := &progress{w: w, steps: job.MaxSteps, spe: job.StepsPerEpoch, globalBatch: globalBatch,
		epochs: int((job.MaxSteps + job.StepsPerEpoch - 1) / job.StepsPerEpoch), heldOut: heldOut}
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		p.tty = t.IsTerminal() // a console shared with the logs
	} else if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) start(first uint64) { p.started, p.first = time.Now(), first }

// trained notes rank 0's training time (from its first step) as of now:
// the first such note sets when training began.
func (p *progress) trained(elapsed time.Duration) {
	if p.trainStart.IsZero() {
		p.trainStart = time.Now().Add(-elapsed)
	}
}

// rate is the training throughput, in samples per second, once step
// (0-based) is done: the samples since training began over the time since
// then. Start-up is not training and is left out; the time of whatever
// interrupts training afterwards (a ring re-forming, a worker joining) is
// in.
func (p *progress) rate(step uint64) float64 {
	done := step + 1
	since := p.started
	if !p.trainStart.IsZero() {
		since = p.trainStart
	}
	return float64(done-min(done, p.first)) * float64(p.globalBatch) / time.Since(since).Seconds()
}

// step records that steps first to step (0-based; one report of rank
// 0's) finished, the last with the given loss.
func (p *progress) step(first, step uint64, loss float64) {
	done := step + 1
	epoch, inEpoch := step/p.spe+1, step%p.spe+1
	rate := p.rate(step)
	if p.tty {
		if time.Since(p.lastDraw) < 100*time.Millisecond && done != p.steps {
			return
		}
		p.lastDraw, p.drawn = time.Now(), true
		const width = 30
		fill := int(width * inEpoch / p.spe)
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r\033[Kepoch %d/%d [%s] %d/%d  loss %.4f  %.0f samples/s", epoch, p.epochs, bar, inEpoch, p.spe, loss, rate)
		return
	}
	// A line at every tenth of an epoch that the steps first to step
	// (one report's) passed.
	tenth := max(p.spe/10, 1)
	passed := done == p.steps
	for s := first; s <= step && !passed; s++ {
		passed = (s%p.spe+1)%tenth == 0
	}
	if passed {
		fmt.Fprintf(p.w, "epoch %d/%d step %d/%d loss %.4f %.0f samples/s\n", epoch, p.epochs, inEpoch, p.spe, loss, rate)
	}
}

// line prints a line of its own, clearing a drawn bar first.
func (p *progress) line(format string, args ...any) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) epochEnd(m EpochMetrics) {
	p.line("epoch %d/%d done: train loss %.4f, %s loss %.4f, %s accuracy %.4f", m.Epoch, p.epochs, m.TrainLoss, p.heldOut, m.TestLoss, p.heldOut, m.TestAccuracy)
}

func (p *progress) finish(m EpochMetrics) {
	if p.started.IsZero() {
		// A restarted coordinator whose checkpoint held the last step
		// trained nothing.
		p.line("finished %d steps (all before this restart): %s loss %.4f, %s accuracy %.4f", p.steps, p.heldOut, m.TestLoss, p.heldOut, m.TestAccuracy)
		return
	}
	start := ""
	if !p.trainStart.IsZero() {
		start = fmt.Sprintf(" (after %v of start-up: shards and state)", p.trainStart.Sub(p.started).Round(time.Millisecond))
	}
	p.line("finished %d steps in %v%s: %s loss %.4f, %s accuracy %.4f", p.steps, time.Since(p.started).Round(time.Millisecond), start, p.heldOut, m.TestLoss, p.heldOut, m.TestAccuracy)
}

func (p *progress) abort() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
