package nn

import (
	"fmt"
	"math"
)

// ScheduleSpec varies the learning rate with the step: an optional linear
// warm-up, then a decay. Lengths are in steps or, with the _epochs fields,
// in epochs of the job's data (fractions allowed), converted with the
// number of steps per epoch of the run.
//
//	constant     the rate
//	step         rate · decay_rate^⌊t/decay⌋ (Keras's ExponentialDecay, staircase)
//	exponential  rate · decay_rate^(t/decay)
//	cosine       rate · ((1−alpha)·½(1 + cos(π·min(t, decay)/decay)) + alpha)
//
// where t counts the steps after the warm-up. During the warm-up, step t
// (from 0) uses rate · (t+1)/warmup.
type ScheduleSpec struct {
	// Name is constant (the default when only a warm-up is wanted), step,
	// exponential or cosine.
	Name         string  `json:"name"`
	WarmupSteps  int     `json:"warmup_steps,omitempty"`
	WarmupEpochs float64 `json:"warmup_epochs,omitempty"`
	DecaySteps   int     `json:"decay_steps,omitempty"`
	DecayEpochs  float64 `json:"decay_epochs,omitempty"`
	// DecayRate is the factor per decay interval of step and exponential.
	DecayRate float64 `json:"decay_rate,omitempty"`
	// Alpha is cosine's floor, a fraction of the rate.
	Alpha float64 `json:"alpha,omitempty"`
}

func (s *ScheduleSpec) validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("nn: model description: optimizer.schedule.%s: %s", field, fmt.Sprintf(format, args...))
	}
	decays := s.Name == "step" || s.Name == "exponential" || s.Name == "cosine"
	switch {
	case s.Name != "constant" && !decays:
		return fail("name", "unknown schedule %q (want constant, step, exponential or cosine)", s.Name)
	case s.WarmupSteps < 0 || !(s.WarmupEpochs >= 0) || math.IsInf(s.WarmupEpochs, 0):
		return fail("warmup_steps", "the warm-up cannot be negative")
	case s.WarmupSteps > 0 && s.WarmupEpochs > 0:
		return fail("warmup_epochs", "give warmup_steps or warmup_epochs, not both")
	case s.DecaySteps < 0 || !(s.DecayEpochs >= 0) || math.IsInf(s.DecayEpochs, 0):
		return fail("decay_steps", "cannot be negative")
	case s.DecaySteps > 0 && s.DecayEpochs > 0:
		return fail("decay_epochs", "give decay_steps or decay_epochs, not both")
	case decays && s.DecaySteps == 0 && s.DecayEpochs == 0:
		return fail("decay_steps", "%s needs decay_steps or decay_epochs", s.Name)
	case !decays && (s.DecaySteps != 0 || s.DecayEpochs != 0 || s.DecayRate != 0 || s.Alpha != 0):
		return fail("name", "a constant schedule takes only a warm-up")
	case (s.Name == "step" || s.Name == "exponential") && !(s.DecayRate > 0 && s.DecayRate <= 1):
		return fail("decay_rate", "must be in (0, 1], got %v", s.DecayRate)
	case s.Name == "cosine" && s.DecayRate != 0:
		return fail("decay_rate", "does not apply to cosine")
	case !(s.Alpha >= 0 && s.Alpha <= 1):
		return fail("alpha", "must be in [0, 1], got %v", s.Alpha)
	case s.Name != "cosine" && s.Alpha != 0:
		return fail("alpha", "applies to cosine only")
	}
	return nil
}

// Factor is the learning rate of step t (from 0) as a fraction of the base
// rate, for a run of stepsPerEpoch steps an epoch. A nil schedule is 1.
func (s *ScheduleSpec) Factor(t uint64, stepsPerEpoch int) float64 {
	if s == nil {
		return 1
	}
	steps := func(n int, epochs float64) float64 {
		if n > 0 {
			return float64(n)
		}
		return math.Max(math.Round(epochs*float64(stepsPerEpoch)), 1)
	}
	if s.WarmupSteps > 0 || s.WarmupEpochs > 0 {
		w := steps(s.WarmupSteps, s.WarmupEpochs)
		if float64(t) < w {
			return float64(t+1) / w
		}
		t -= uint64(w)
	}
	if s.Name == "constant" {
		return 1
	}
	d := steps(s.DecaySteps, s.DecayEpochs)
	switch s.Name {
	case "step":
		return math.Pow(s.DecayRate, math.Floor(float64(t)/d))
	case "exponential":
		return math.Pow(s.DecayRate, float64(t)/d)
	default: // cosine
		return (1-s.Alpha)*0.5*(1+math.Cos(math.Pi*math.Min(float64(t), d)/d)) + s.Alpha
	}
}

// LearningRateAt is the rate of step t under the optimiser's schedule.
func (o OptimizerSpec) LearningRateAt(t uint64, stepsPerEpoch int) float64 {
	return o.LearningRate * o.Schedule.Factor(t, stepsPerEpoch)
}
