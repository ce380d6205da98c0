package nn

import (
	"fmt"
	"math"

	"ringtrain/internal/gemm"
)

// Optimizer updates a model's parameters from its gradients. Both are the
// model's flat buffers, so one call updates every layer. An Optimizer is not
// safe for concurrent use.
type Optimizer interface {
	// Step applies one update. It panics if params and grads differ in
	// length from the size the optimiser was made for.
	Step(params, grads []float64)
	// LearningRate is the rate the next Step uses; SetLearningRate changes
	// it, for warm-up and schedules.
	LearningRate() float64
	SetLearningRate(lr float64)
	// Iterations is the number of steps applied so far.
	Iterations() uint64
	// State returns a copy of everything Step depends on besides the
	// hyper-parameters; SetState restores it. CopyState is State into dst,
	// reusing its slices.
	State() OptimizerState
	SetState(OptimizerState) error
	CopyState(dst *OptimizerState)
}

// OptimizerState is an optimiser's iteration count and its named
// per-parameter vectors (Adam's "m" and "v", say).
type OptimizerState struct {
	Iterations uint64
	Slots      []Slot
}

// Slot is one named per-parameter vector of optimiser state.
type Slot struct {
	Name   string
	Values []float64
}

// NewOptimizer returns the optimiser spec describes, for n parameters, with
// its state zeroed.
func NewOptimizer(spec OptimizerSpec, n int) (Optimizer, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	b := base{spec: spec, lr: spec.LearningRate, n: n}
	switch spec.Name {
	case "sgd":
		o := &sgd{base: b}
		if spec.Momentum > 0 {
			o.slots = []Slot{{"velocity", make([]float64, n)}}
		}
		return o, nil
	case "rmsprop":
		o := &rmsprop{base: b}
		o.slots = []Slot{{"velocity", make([]float64, n)}}
		if spec.Momentum > 0 {
			o.slots = append(o.slots, Slot{"momentum", make([]float64, n)})
		}
		if spec.Centered {
			o.slots = append(o.slots, Slot{"average_gradient", make([]float64, n)})
		}
		return o, nil
	default: // adam, adamw
		o := &adam{base: b}
		o.slots = []Slot{{"m", make([]float64, n)}, {"v", make([]float64, n)}}
		return o, nil
	}
}

// base holds what every optimiser shares: hyper-parameters, the current
// learning rate, the iteration count and the state vectors.
type base struct {
	spec       OptimizerSpec
	lr         float64
	n          int
	iterations uint64
	slots      []Slot
}

func (b *base) LearningRate() float64      { return b.lr }
func (b *base) SetLearningRate(lr float64) { b.lr = lr }
func (b *base) Iterations() uint64         { return b.iterations }

func (b *base) State() OptimizerState {
	var s OptimizerState
	b.CopyState(&s)
	return s
}

func (b *base) CopyState(dst *OptimizerState) {
	dst.Iterations = b.iterations
	if len(dst.Slots) != len(b.slots) {
		dst.Slots = make([]Slot, len(b.slots))
	}
	for i, sl := range b.slots {
		dst.Slots[i].Name = sl.Name
		dst.Slots[i].Values = append(dst.Slots[i].Values[:0], sl.Values...)
	}
}

func (b *base) SetState(s OptimizerState) error {
	if len(s.Slots) != len(b.slots) {
		return fmt.Errorf("nn: optimizer state has %d slots, %s needs %d", len(s.Slots), b.spec.Name, len(b.slots))
	}
	for i, sl := range s.Slots {
		if sl.Name != b.slots[i].Name || len(sl.Values) != b.n {
			return fmt.Errorf("nn: optimizer state slot %d is %q of %d values, %s needs %q of %d",
				i, sl.Name, len(sl.Values), b.spec.Name, b.slots[i].Name, b.n)
		}
	}
	for i, sl := range s.Slots {
		copy(b.slots[i].Values, sl.Values)
	}
	b.iterations = s.Iterations
	return nil
}

// begin checks the lengths, counts the iteration and applies decoupled
// weight decay, w ← w − lr·wd·w, before the optimiser's own update.
func (b *base) begin(params, grads []float64) {
	if len(params) != b.n || len(grads) != b.n {
		panic(fmt.Sprintf("nn: %s optimizer made for %d parameters got %d parameters and %d gradients",
			b.spec.Name, b.n, len(params), len(grads)))
	}
	b.iterations++
	if wd := b.spec.WeightDecay; wd > 0 {
		f := 1 - b.lr*wd
		for i := range params {
			params[i] *= f
		}
	}
}

// sgd is stochastic gradient descent, with optional (Nesterov) momentum, as
// Keras defines it:
//
//	momentum 0:  w ← w − lr·g
//	momentum μ:  v ← μ·v − lr·g;  w ← w + v           (classical)
//	             v ← μ·v − lr·g;  w ← w + μ·v − lr·g  (Nesterov)
type sgd struct{ base }

func (o *sgd) Step(params, grads []float64) {
	o.begin(params, grads)
	lr, mu := o.lr, o.spec.Momentum
	if mu == 0 {
		for i, g := range grads {
			params[i] -= lr * g
		}
		return
	}
	v := o.slots[0].Values
	for i, g := range grads {
		v[i] = mu*v[i] - lr*g
		if o.spec.Nesterov {
			params[i] += mu*v[i] - lr*g
		} else {
			params[i] += v[i]
		}
	}
}

// rmsprop is RMSprop (Tieleman and Hinton) as Keras defines it:
//
//	v ← ρ·v + (1−ρ)·g²
//	centered: a ← ρ·a + (1−ρ)·g;  d = v − a² + ε, else d = v + ε
//	momentum 0:  w ← w − lr·g/√d
//	momentum μ:  m ← μ·m + lr·g/√d;  w ← w − m
type rmsprop struct{ base }

func (o *rmsprop) Step(params, grads []float64) {
	o.begin(params, grads)
	lr, rho, eps, mu := o.lr, o.spec.Rho, o.spec.Epsilon, o.spec.Momentum
	v := o.slots[0].Values
	var mom, avg []float64
	next := 1
	if mu > 0 {
		mom = o.slots[next].Values
		next++
	}
	if o.spec.Centered {
		avg = o.slots[next].Values
	}
	for i, g := range grads {
		v[i] = rho*v[i] + (1-rho)*g*g
		d := v[i] + eps
		if avg != nil {
			avg[i] = rho*avg[i] + (1-rho)*g
			d -= avg[i] * avg[i]
		}
		step := lr * g / math.Sqrt(d)
		if mom != nil {
			mom[i] = mu*mom[i] + step
			step = mom[i]
		}
		params[i] -= step
	}
}

// adam is Adam (Kingma and Ba, Algorithm 1 in its efficient form, as Keras
// implements it); with weight decay it is AdamW:
//
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	α = lr·√(1−β2^t)/(1−β1^t);  w ← w − α·m/(√v + ε)
type adam struct{ base }

func (o *adam) Step(params, grads []float64) {
	o.begin(params, grads)
	b1, b2, eps := o.spec.Beta1, o.spec.Beta2, o.spec.Epsilon
	t := float64(o.iterations)
	alpha := o.lr * math.Sqrt(1-math.Pow(b2, t)) / (1 - math.Pow(b1, t))
	// Four parameters at a time in AVX2, bit-identical to the plain loop.
	gemm.AdamUpdate(params, grads, o.slots[0].Values, o.slots[1].Values, 1-b1, 1-b2, alpha, eps)
}
