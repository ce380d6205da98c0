package nn

import (
	"fmt"
	"math"
	"slices"

	"ringtrain/internal/gemm"
)

// Optimizer updates a model's parameters from its gradients. Both are the
// model's flat buffers, so one call updates every layer. An optimiser keeps
// its state in one dtype, the model's: Step updates a float64 model and
// Step32 a float32 one, and each panics on an optimiser of the other dtype.
// An Optimizer is not safe for concurrent use.
type Optimizer interface {
	// Step applies one update. It panics if params and grads differ in
	// length from the size the optimiser was made for, or if the
	// optimiser was made for float32 (NewOptimizer32).
	Step(params, grads []float64)
	// Step32 is Step for an optimiser made by NewOptimizer32, its
	// arithmetic in float32. It panics on a float64 optimiser.
	Step32(params, grads []float32)
	// LearningRate is the rate the next Step uses; SetLearningRate changes
	// it, for warm-up and schedules.
	LearningRate() float64
	SetLearningRate(lr float64)
	// Iterations is the number of steps applied so far.
	Iterations() uint64
	// State returns a copy of everything Step depends on besides the
	// hyper-parameters, its vectors widened to float64 for a float32
	// optimiser; SetState restores it (narrowing them). Model.SaveSnapshot
	// copies the same in the optimiser's own dtype.
	State() OptimizerState
	SetState(OptimizerState) error
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

// NewOptimizer returns the float64 optimiser spec describes, for n
// parameters, with its state zeroed.
func NewOptimizer(spec OptimizerSpec, n int) (Optimizer, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &optimizer[float64]{base: newBase[float64](spec, n)}, nil
}

// NewOptimizer32 is NewOptimizer for a float32 model: its state is float32
// and it updates with Step32.
func NewOptimizer32(spec OptimizerSpec, n int) (Optimizer, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &optimizer[float32]{base: newBase[float32](spec, n)}, nil
}

// slotNames lists the state vectors spec's optimiser keeps.
func slotNames(spec OptimizerSpec) []string {
	switch spec.Name {
	case "sgd":
		if spec.Momentum > 0 {
			return []string{"velocity"}
		}
		return nil
	case "rmsprop":
		names := []string{"velocity"}
		if spec.Momentum > 0 {
			names = append(names, "momentum")
		}
		if spec.Centered {
			names = append(names, "average_gradient")
		}
		return names
	default: // adam, adamw
		return []string{"m", "v"}
	}
}

// base holds what every optimiser shares: hyper-parameters, the current
// learning rate, the iteration count and the state vectors, in T.
type base[T float] struct {
	spec       OptimizerSpec
	lr         float64
	n          int
	iterations uint64
	names      []string
	slots      [][]T
}

func newBase[T float](spec OptimizerSpec, n int) base[T] {
	b := base[T]{spec: spec, lr: spec.LearningRate, n: n, names: slotNames(spec)}
	for range b.names {
		b.slots = append(b.slots, make([]T, n))
	}
	return b
}

func (b *base[T]) LearningRate() float64      { return b.lr }
func (b *base[T]) SetLearningRate(lr float64) { b.lr = lr }
func (b *base[T]) Iterations() uint64         { return b.iterations }

func (b *base[T]) State() OptimizerState {
	s := OptimizerState{Iterations: b.iterations, Slots: make([]Slot, len(b.slots))}
	for i, sl := range b.slots {
		s.Slots[i] = Slot{Name: b.names[i], Values: make([]float64, b.n)}
		switch v := any(sl).(type) {
		case []float64:
			copy(s.Slots[i].Values, v)
		case []float32:
			widen(s.Slots[i].Values, v)
		}
	}
	return s
}

func (b *base[T]) SetState(s OptimizerState) error {
	if len(s.Slots) != len(b.slots) {
		return fmt.Errorf("nn: optimizer state has %d slots, %s needs %d", len(s.Slots), b.spec.Name, len(b.slots))
	}
	for i, sl := range s.Slots {
		if sl.Name != b.names[i] || len(sl.Values) != b.n {
			return fmt.Errorf("nn: optimizer state slot %d is %q of %d values, %s needs %q of %d",
				i, sl.Name, len(sl.Values), b.spec.Name, b.names[i], b.n)
		}
	}
	for i, sl := range s.Slots {
		switch dst := any(b.slots[i]).(type) {
		case []float64:
			copy(dst, sl.Values)
		case []float32:
			narrow(dst, sl.Values)
		}
	}
	b.iterations = s.Iterations
	return nil
}

// begin checks the lengths, counts the iteration and applies decoupled
// weight decay, w ← w − lr·wd·w, before the optimiser's own update.
func (b *base[T]) begin(params, grads []T) {
	if len(params) != b.n || len(grads) != b.n {
		panic(fmt.Sprintf("nn: %s optimizer made for %d parameters got %d parameters and %d gradients",
			b.spec.Name, b.n, len(params), len(grads)))
	}
	b.iterations++
	if wd := b.spec.WeightDecay; wd > 0 {
		f := T(1 - b.lr*wd)
		for i := range params {
			params[i] *= f
		}
	}
}

// optimizer is every optimiser, its state and arithmetic in T.
type optimizer[T float] struct{ base[T] }

func (o *optimizer[T]) Step(params, grads []float64) {
	p, ok := any(params).([]T)
	if !ok {
		panic(fmt.Sprintf("nn: Step of a float32 %s optimizer; use Step32", o.spec.Name))
	}
	o.step(p, any(grads).([]T))
}

func (o *optimizer[T]) Step32(params, grads []float32) {
	p, ok := any(params).([]T)
	if !ok {
		panic(fmt.Sprintf("nn: Step32 of a float64 %s optimizer; use Step", o.spec.Name))
	}
	o.step(p, any(grads).([]T))
}

func (o *optimizer[T]) step(params, grads []T) {
	o.begin(params, grads)
	switch o.spec.Name {
	case "sgd":
		o.sgd(params, grads)
	case "rmsprop":
		o.rmsprop(params, grads)
	default:
		o.adam(params, grads, nil)
	}
}

// sgd is stochastic gradient descent, with optional (Nesterov) momentum, as
// Keras defines it:
//
//	momentum 0:  w ← w − lr·g
//	momentum μ:  v ← μ·v − lr·g;  w ← w + v           (classical)
//	             v ← μ·v − lr·g;  w ← w + μ·v − lr·g  (Nesterov)
func (o *optimizer[T]) sgd(params, grads []T) {
	lr, mu := T(o.lr), T(o.spec.Momentum)
	if mu == 0 {
		for i, g := range grads {
			params[i] -= lr * g
		}
		return
	}
	v := o.slots[0]
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
func (o *optimizer[T]) rmsprop(params, grads []T) {
	lr, rho, eps, mu := T(o.lr), T(o.spec.Rho), T(o.spec.Epsilon), T(o.spec.Momentum)
	v := o.slots[0]
	var mom, avg []T
	next := 1
	if mu > 0 {
		mom = o.slots[next]
		next++
	}
	if o.spec.Centered {
		avg = o.slots[next]
	}
	for i, g := range grads {
		v[i] = rho*v[i] + (1-rho)*g*g
		d := v[i] + eps
		if avg != nil {
			avg[i] = rho*avg[i] + (1-rho)*g
			d -= avg[i] * avg[i]
		}
		step := lr * g / sqrt(d)
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
//
// α is computed in float64 whatever T. keep, for a float32 optimiser,
// receives the state as it was before the update (see stepKeeping).
func (o *optimizer[T]) adam(params, grads []T, keep *snapshotOf[T]) {
	b1, b2, eps := o.spec.Beta1, o.spec.Beta2, o.spec.Epsilon
	t := float64(o.iterations)
	alpha := o.lr * math.Sqrt(1-math.Pow(b2, t)) / (1 - math.Pow(b1, t))
	m, v := o.slots[0], o.slots[1]
	if p, ok := any(params).([]float64); ok {
		// Four parameters at a time in AVX2, bit-identical to the plain loop.
		gemm.AdamUpdate(p, any(grads).([]float64), any(m).([]float64), any(v).([]float64), 1-b1, 1-b2, alpha, eps)
		return
	}
	// Eight at a time in AVX2, in float32.
	p, m32, v32 := any(params).([]float32), any(m).([]float32), any(v).([]float32)
	oldP, oldM, oldV := p, m32, v32
	if keep != nil {
		oldP, oldM, oldV = any(keep.params).([]float32), any(keep.slots[0]).([]float32), any(keep.slots[1]).([]float32)
	}
	gemm.AdamUpdate32Keeping(p, any(grads).([]float32), m32, v32, oldP, oldM, oldV,
		float32(1-b1), float32(1-b2), float32(alpha), float32(eps))
}

// stepKeeping is step after saving params and the optimiser's state in s
// (snapshotOf.save). A float32 Adam without weight decay writes the old
// values in the update's own pass, which spares a pass over the state;
// every other optimiser saves, then steps.
func (o *optimizer[T]) stepKeeping(params, grads []T, s *snapshotOf[T]) {
	_, single := any(params).([]float32)
	if !single || o.spec.Name != "adam" || o.spec.WeightDecay > 0 || len(params) != o.n {
		s.save(params, o)
		o.step(params, grads)
		return
	}
	s.iterations, s.names = o.iterations, o.names
	s.params = slices.Grow(s.params[:0], o.n)[:o.n]
	if len(s.slots) != len(o.slots) {
		s.slots = make([][]T, len(o.slots))
	}
	for i := range s.slots {
		s.slots[i] = slices.Grow(s.slots[i][:0], o.n)[:o.n]
	}
	o.begin(params, grads)
	o.adam(params, grads, s)
}
