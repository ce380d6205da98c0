package coordinator

import (
	"math"
	"time"

	"ringtrain/internal/control"
	"ringtrain/internal/metrics"
	pb "ringtrain/proto"
)

// reporter accumulates what a job reports about itself, apart from the
// decisions of its ring lifecycle: the history the summary and the
// checkpoints carry, each step's training loss, the progress display, the
// workers' timelines and the metrics. The supervise loop feeds it.
type reporter struct {
	job      *pb.JobSpec
	metrics  *metrics.Coordinator
	progress *progress
	started  time.Time
	// history is what the summary will report; losses holds the training
	// loss of each step reported (NaN until then), trainNs the longest
	// training time a worker reported.
	history history
	losses  []float64
	trainNs uint64
	// fixedPointBits is the deterministic mode's current resolution.
	fixedPointBits int
	// traces are the timelines of the current ring's members by rank,
	// ids their worker ids.
	traces map[int]*traced
	ids    []string
	// failedChange indexes, by ring, the ring-failed membership change
	// that an amendment rewrites.
	failedChange map[uint32]int
}

// newReporter is the reporter of a job that starts with history h (a new
// job's, or the one saved with the checkpoint it resumed from).
func newReporter(c *coordinator, h history) *reporter {
	r := &reporter{job: c.job, metrics: c.metrics, started: c.started, history: h,
		progress: newProgress(c.cfg.Progress, c.job, c.globalBatch(), c.heldOutName()),
		losses:   make([]float64, c.job.MaxSteps), fixedPointBits: int(c.job.FixedPointBits), failedChange: map[uint32]int{}}
	if b := h.FixedPointBits; b > 0 {
		r.fixedPointBits = b
	}
	for i := range r.losses {
		r.losses[i] = math.NaN()
	}
	return r
}

// change records a membership change; an amendment rewrites the ring's
// ring-failed change with its root cause.
func (r *reporter) change(ch MembershipChange, amend bool) {
	if amend {
		if i, ok := r.failedChange[ch.Ring]; ok {
			old := &r.history.MembershipChanges[i]
			old.Worker, old.Step, old.Cause = ch.Worker, ch.Step, ch.Cause
		}
		return
	}
	ch.Seconds = time.Since(r.started).Seconds()
	if ch.Kind == "ring-failed" {
		r.failedChange[ch.Ring] = len(r.history.MembershipChanges)
	}
	r.history.MembershipChanges = append(r.history.MembershipChanges, ch)
	r.metrics.MembershipChanges.WithLabelValues(ch.Kind).Inc()
}

// ringStarted notes a new ring's members; the first ring starts the
// progress display.
func (r *reporter) ringStarted(first bool, start uint64, ids []string) {
	r.ids, r.traces = ids, nil
	r.metrics.RingSize.Set(float64(len(ids)))
	if first {
		r.progress.start(start)
	}
}

// stepDone records rank 0's report of steps: their losses, timings, and
// the deterministic mode's resolution.
func (r *reporter) stepDone(rep *pb.WorkerReport) {
	// The report covers the steps of its losses (rank 0 batches them),
	// the last being rep.Step; only that one can be a skipped step.
	losses := rep.Losses
	if len(losses) == 0 {
		losses = []float64{rep.Loss}
	}
	first := rep.Step + 1 - uint64(len(losses))
	r.metrics.Steps.Add(float64(len(losses)))
	r.progress.trained(time.Duration(rep.ElapsedNs))
	for i, l := range losses {
		if step := first + uint64(i); step == rep.Step && rep.Skipped {
			r.history.SkippedSteps++
			r.metrics.SkippedSteps.Inc()
		} else {
			r.losses[step], r.history.LastLoss = l, Metric(l)
			r.metrics.Loss.Set(l)
		}
	}
	r.metrics.SamplesPerSecond.Set(r.progress.rate(rep.Step))
	epoch := int(rep.Step / r.job.StepsPerEpoch)
	r.history.Epochs[epoch].WallSeconds = time.Duration(rep.ElapsedNs).Seconds()
	r.history.Timing.Compute += float64(rep.ComputeNs) / 1e6
	r.history.Timing.Allreduce += float64(rep.AllreduceNs) / 1e6
	r.history.Timing.Optimizer += float64(rep.OptimizerNs) / 1e6
	r.history.TimedN += float64(len(losses))
	r.progress.step(first, rep.Step, rep.Loss)
}

// rescaled records the deterministic mode's resolution after a step, and
// reports whether it was lowered.
func (r *reporter) rescaled(bits int) bool {
	lowered := bits < r.fixedPointBits
	if lowered {
		r.history.FixedPointRescales++
	}
	r.fixedPointBits = bits
	return lowered
}

// recovered records the time from a ring's failure to the next completed
// step.
func (r *reporter) recovered(d time.Duration) {
	r.history.RecoverySeconds = append(r.history.RecoverySeconds, d.Seconds())
	r.metrics.RecoverySeconds.Observe(d.Seconds())
}

// finished records a member's report of the job's last step.
func (r *reporter) finished(worker string, steps, trainNs uint64) {
	r.trainNs = max(r.trainNs, trainNs)
	r.history.WorkerSteps[worker] += steps
}

// ringEnded records the steps a ring's members computed, and a rollback.
func (r *reporter) ringEnded(rollback bool, credits []control.Credit) {
	if rollback {
		r.history.Rollbacks++
		r.metrics.Rollbacks.Inc()
	}
	for _, cr := range credits {
		r.history.WorkerSteps[cr.Worker] += cr.Steps
	}
}

// rewind voids the losses reported from step on: those steps are redone.
func (r *reporter) rewind(step uint64) {
	for i := step; i < uint64(len(r.losses)); i++ {
		r.losses[i] = math.NaN()
	}
}

// evaluating notes that the state at the end of epoch, after step, is
// being evaluated.
func (r *reporter) evaluating(epoch int, step uint64) {
	r.history.Epochs[epoch].Epoch, r.history.Epochs[epoch].Step = epoch+1, step
}

// evaluated records an epoch's evaluation, and returns its metrics.
func (r *reporter) evaluated(e evaluated) EpochMetrics {
	m := &r.history.Epochs[e.epoch]
	m.TestLoss, m.TestAccuracy, m.TrainLoss = Metric(e.loss), Metric(e.acc), r.epochTrainLoss(e.epoch)
	r.metrics.TestAccuracy.Set(e.acc)
	r.progress.epochEnd(*m)
	return *m
}

// traced keeps a member's timeline, the first one of each rank.
func (r *reporter) traced(t traced) {
	if r.traces == nil {
		r.traces = map[int]*traced{}
	}
	if _, dup := r.traces[int(t.rank)]; !dup {
		r.traces[int(t.rank)] = &t
	}
}

// epochTrainLoss is the mean training loss of an epoch's reported steps,
// those an earlier coordinator of the job recorded included; unknown when
// none was finite.
func (r *reporter) epochTrainLoss(epoch int) Metric {
	spe := int(r.job.StepsPerEpoch)
	sum, n := r.history.LossSum[epoch], r.history.LossCount[epoch]
	for _, l := range r.losses[epoch*spe : min((epoch+1)*spe, len(r.losses))] {
		if Metric(l).Known() {
			sum += l
			n++
		}
	}
	if n == 0 {
		return Unknown
	}
	return Metric(sum / float64(n))
}

// snapshot is the history as of step, after rings rings of this
// coordinator: the losses of the steps before it folded into the
// per-epoch sums.
func (r *reporter) snapshot(step uint64, rings uint32) *history {
	spe := r.job.StepsPerEpoch
	h := r.history
	h.Step = step
	h.Rings += int(rings)
	h.LossSum, h.LossCount = append([]float64(nil), h.LossSum...), append([]int(nil), h.LossCount...)
	for i, l := range r.losses[:min(step, uint64(len(r.losses)))] {
		if Metric(l).Known() {
			h.LossSum[uint64(i)/spe] += l
			h.LossCount[uint64(i)/spe]++
		}
	}
	return &h
}
