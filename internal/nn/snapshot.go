package nn

import (
	"errors"
	"fmt"
	"slices"
)

// Snapshot is a copy of a model's parameters and optimiser state in the
// model's dtype: SaveSnapshot and LoadSnapshot copy the model's own
// buffers, float32 for a float32 model, with no conversion. A worker saves
// one before every update, so that it can undo the step. The zero Snapshot
// is empty; SaveSnapshot reuses a Snapshot's memory.
type Snapshot struct {
	// dtype is that of the model saved, "" before the first save; only
	// the copy of that dtype holds values.
	dtype string
	f32   snapshotOf[float32]
	f64   snapshotOf[float64]
}

// snapshotOf is a Snapshot of a model of dtype T.
type snapshotOf[T float] struct {
	params     []T
	iterations uint64
	names      []string // the optimiser's slots
	slots      [][]T
}

// SaveSnapshot copies the parameters and optimiser state into s, reusing
// its memory.
func (m *Model) SaveSnapshot(s *Snapshot) {
	s.dtype = m.Dtype()
	if m.single {
		s.f32.save(m.params32, m.opt)
		s.f64 = snapshotOf[float64]{}
		return
	}
	s.f64.save(m.params, m.opt)
	s.f32 = snapshotOf[float32]{}
}

// ApplyGradientsKeeping is SaveSnapshot(s) then ApplyGradients, in one pass
// over the state where it can: a float32 model trained with Adam (without
// weight decay or pruning) has the update write the old parameters and
// moments to s as it reads them. A worker calls it every step to keep the
// state it may have to roll back to.
func (m *Model) ApplyGradientsKeeping(s *Snapshot) {
	if !m.single || m.spec.Pruning != nil {
		m.SaveSnapshot(s)
		m.ApplyGradients()
		return
	}
	s.dtype = m.Dtype()
	s.f64 = snapshotOf[float64]{}
	m.opt.(*optimizer[float32]).stepKeeping(m.params32, m.grads32, &s.f32)
}

// LoadSnapshot restores the parameters and optimiser state from s, which
// must have been saved from a model of the same dtype, size and optimiser.
func (m *Model) LoadSnapshot(s *Snapshot) error {
	switch {
	case s.dtype == "":
		return errors.New("nn: restoring an empty snapshot")
	case s.dtype != m.Dtype():
		return fmt.Errorf("nn: snapshot of a %s model for a %s one", s.dtype, m.Dtype())
	case m.single:
		return s.f32.load(m.params32, m.opt)
	default:
		return s.f64.load(m.params, m.opt)
	}
}

// LoadState sets the parameters and optimiser state from float64 values,
// a state received on the wire, rounding them to float32 for a float32
// model.
func (m *Model) LoadState(params []float64, opt OptimizerState) error {
	if len(params) != m.n {
		return fmt.Errorf("nn: state of %d parameters for a model of %d", len(params), m.n)
	}
	if err := m.opt.SetState(opt); err != nil {
		return err
	}
	m.SetParams(params)
	return nil
}

// save copies params and opt's state, an optimiser of dtype T, into s.
func (s *snapshotOf[T]) save(params []T, opt Optimizer) {
	o := opt.(*optimizer[T])
	s.params = append(s.params[:0], params...)
	s.iterations, s.names = o.iterations, o.names
	if len(s.slots) != len(o.slots) {
		s.slots = make([][]T, len(o.slots))
	}
	for i, sl := range o.slots {
		s.slots[i] = append(s.slots[i][:0], sl...)
	}
}

// load copies s into params and opt's state, after checking that s was
// saved from a model of as many parameters with the same optimiser slots.
func (s *snapshotOf[T]) load(params []T, opt Optimizer) error {
	o := opt.(*optimizer[T])
	if len(s.params) != len(params) {
		return fmt.Errorf("nn: snapshot of %d parameters for a model of %d", len(s.params), len(params))
	}
	if !slices.Equal(s.names, o.names) {
		return fmt.Errorf("nn: snapshot of optimizer slots %q for a %s optimizer's %q", s.names, o.spec.Name, o.names)
	}
	copy(params, s.params)
	o.iterations = s.iterations
	for i, sl := range s.slots {
		copy(o.slots[i], sl)
	}
	return nil
}
