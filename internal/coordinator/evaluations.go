package coordinator

import (
	"runtime"

	"ringtrain/internal/nn"
)

// When the epochs' states are evaluated (Job.Evaluations).
const (
	EvalAuto   = "auto"
	EvalDuring = "during"
	EvalAfter  = "after"
)

// maxKeptEvaluation bounds the parameters EvalAfter keeps for evaluation
// after the training: 256 MiB, 48 epochs of 784-512-512-10's 670,000
// float64 parameters, thousands of the Keras example's.
const maxKeptEvaluation = 256 << 20

// evaluateAfter reports whether the job keeps its epochs' states to
// evaluate them after the training (Job.Evaluations).
func (c Config) evaluateAfter() bool {
	switch c.Evaluations {
	case EvalDuring:
		return false
	case EvalAfter:
		return true
	}
	return c.LocalWorkers >= runtime.NumCPU()
}

// keptEvaluation is an epoch's end state waiting to be evaluated.
type keptEvaluation struct {
	epoch  int
	params []float64
}

// evaluateEpoch evaluates the state at the end of epoch (0-based) now, or
// keeps it for after the training, evaluating the oldest kept states at
// once beyond maxKeptEvaluation.
func (c *coordinator) evaluateEpoch(s *supervisor, epoch int, params []float64) {
	e := keptEvaluation{epoch: epoch, params: params}
	if !c.cfg.evaluateAfter() {
		c.startEvaluations(s, e)
		return
	}
	s.kept = append(s.kept, e)
	s.keptBytes += 8 * len(params)
	for len(s.kept) > 1 && s.keptBytes > maxKeptEvaluation {
		s.keptBytes -= 8 * len(s.kept[0].params)
		c.startEvaluations(s, s.kept[0])
		s.kept = s.kept[1:]
	}
}

// evaluateKept starts the evaluation of the states kept for after the
// training, oldest first.
func (c *coordinator) evaluateKept(s *supervisor) {
	if len(s.kept) > 0 {
		c.startEvaluations(s, s.kept...)
		s.kept, s.keptBytes = nil, 0
	}
}

// startEvaluations evaluates the states, one after the other, on a
// goroutine of s.evals, posting each result to the supervise loop.
func (c *coordinator) startEvaluations(s *supervisor, es ...keptEvaluation) {
	s.evals.Add(1)
	go func() {
		defer s.evals.Done()
		for _, e := range es {
			loss, acc := c.evaluate(e.params)
			// Collecting before the epoch's result is posted makes the
			// live heap that /metrics reports at an epoch's end the
			// resting heap, comparable across epochs
			// (TestMemoryStaysFlat), rather than whatever a collection
			// that fell mid-evaluation saw.
			runtime.GC()
			c.post(evaluated{epoch: e.epoch, loss: loss, acc: acc})
		}
	}()
}

// evaluate returns the test loss and accuracy of the parameters.
func (c *coordinator) evaluate(params []float64) (loss, acc float64) {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	if c.evalModel == nil {
		m, err := nn.New(c.spec)
		if err != nil {
			panic(err) // the spec was validated when the job was built
		}
		c.evalModel = m
	}
	c.evalModel.SetParams(params)
	return evaluateInChunks(c.evalModel, c.test, c.evalRows)
}
