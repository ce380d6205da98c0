package nn

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// trainedOf is the small model (smallSpec) in dtype with optimizer opt,
// after three steps, so that its optimiser state is not zero.
func trainedOf(t *testing.T, dtype string, opt OptimizerSpec) (*Model, *Batch) {
	t.Helper()
	spec := smallSpec()
	spec.Dtype, spec.Optimizer = dtype, opt
	return trainedSpec(t, spec)
}

// sameBits reports whether a and b hold the same values bit for bit.
func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// sameState reports whether two optimiser states are identical, bit for
// bit.
func sameState(a, b OptimizerState) bool {
	if a.Iterations != b.Iterations || len(a.Slots) != len(b.Slots) {
		return false
	}
	for i := range a.Slots {
		if a.Slots[i].Name != b.Slots[i].Name || !sameBits(a.Slots[i].Values, b.Slots[i].Values) {
			return false
		}
	}
	return true
}

// TestSnapshotRestoresStateExactly saves a trained model of each dtype and
// optimiser, trains it on (which changes every parameter and slot), and
// restores the snapshot: the parameters and the optimiser state are those
// saved, bit for bit, and the snapshot is reused across saves. The State a
// float32 model gives is its float32 values widened, exactly, so comparing
// it compares the float32 values.
func TestSnapshotRestoresStateExactly(t *testing.T) {
	opts := []OptimizerSpec{
		KerasMNIST().Optimizer, // Adam: m and v
		{Name: "rmsprop", LearningRate: 0.01, Rho: 0.9, Epsilon: 1e-7, Momentum: 0.5, Centered: true},
		{Name: "sgd", LearningRate: 0.01, Momentum: 0.9},
	}
	for _, dtype := range []string{"float32", "float64"} {
		for _, opt := range opts {
			t.Run(dtype+"/"+opt.Name, func(t *testing.T) {
				m, b := trainedOf(t, dtype, opt)
				var s Snapshot
				for round := range 2 {
					m.SaveSnapshot(&s)
					params, state := paramsOf(m), m.Optimizer().State()
					for step := uint64(0); step < 2; step++ {
						m.ComputeGradients(b, step)
						m.ApplyGradients()
					}
					if sameBits(params, paramsOf(m)) || sameState(state, m.Optimizer().State()) {
						t.Fatal("training did not change the parameters and the optimiser state")
					}
					if err := m.LoadSnapshot(&s); err != nil {
						t.Fatal(err)
					}
					if !sameBits(params, paramsOf(m)) {
						t.Errorf("round %d: restored parameters differ from those saved", round)
					}
					if !sameState(state, m.Optimizer().State()) {
						t.Errorf("round %d: restored optimiser state differs from that saved", round)
					}
					// Train on, so that the next round saves another state.
					m.ComputeGradients(b, 5)
					m.ApplyGradients()
				}
			})
		}
	}
}

// TestSnapshotOfAnotherModelIsRefused: an empty snapshot, one of the other
// dtype, of another size or of another optimiser does not load, and leaves
// the model as it was.
func TestSnapshotOfAnotherModelIsRefused(t *testing.T) {
	adam := KerasMNIST().Optimizer
	m, _ := trainedOf(t, "float32", adam)
	params := paramsOf(m)
	var empty Snapshot
	if err := m.LoadSnapshot(&empty); err == nil || !strings.Contains(err.Error(), "empty snapshot") {
		t.Errorf("empty snapshot: %v", err)
	}
	var s Snapshot
	f64, _ := trainedOf(t, "float64", adam)
	f64.SaveSnapshot(&s)
	if err := m.LoadSnapshot(&s); err == nil || !strings.Contains(err.Error(), "snapshot of a float64 model for a float32 one") {
		t.Errorf("float64 snapshot into a float32 model: %v", err)
	}
	spec := KerasMNIST()
	spec.InputShape = []int{13}
	bigger, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	bigger.SaveSnapshot(&s)
	if err := m.LoadSnapshot(&s); err == nil || !strings.Contains(err.Error(), "parameters for a model of") {
		t.Errorf("snapshot of a larger model: %v", err)
	}
	rms, _ := trainedOf(t, "float32", OptimizerSpec{Name: "rmsprop", LearningRate: 0.01, Rho: 0.9, Epsilon: 1e-7, Momentum: 0.5})
	rms.SaveSnapshot(&s)
	if err := m.LoadSnapshot(&s); err == nil || !strings.Contains(err.Error(), "optimizer slots") {
		t.Errorf("snapshot of an RMSprop model into an Adam one: %v", err)
	}
	if !sameBits(params, paramsOf(m)) {
		t.Error("a refused snapshot changed the parameters")
	}
}

// TestLoadStateRoundTrip: the float64 state a model gives (the wire's)
// loads into a fresh model of each dtype as the same state, bit for bit.
func TestLoadStateRoundTrip(t *testing.T) {
	for _, dtype := range []string{"float32", "float64"} {
		m, _ := trainedOf(t, dtype, KerasMNIST().Optimizer)
		fresh, err := New(m.Spec())
		if err != nil {
			t.Fatal(err)
		}
		params, state := paramsOf(m), m.Optimizer().State()
		if err := fresh.LoadState(params, state); err != nil {
			t.Fatal(err)
		}
		if !sameBits(params, paramsOf(fresh)) || !sameState(state, fresh.Optimizer().State()) {
			t.Errorf("%s: loaded state differs from that given", dtype)
		}
		if err := fresh.LoadState(params[1:], state); err == nil {
			t.Errorf("%s: a state one parameter short loaded", dtype)
		}
	}
}

// TestApplyGradientsKeepingIsSaveThenApply: for each dtype and optimiser
// (Adam, whose float32 update keeps the old state in its own pass; AdamW
// and SGD, which save first), ApplyGradientsKeeping updates the model as
// ApplyGradients does, bit for bit, and leaves in the snapshot the state
// before the update.
func TestApplyGradientsKeepingIsSaveThenApply(t *testing.T) {
	adamW := KerasMNIST().Optimizer
	adamW.WeightDecay = 0.01
	opts := []OptimizerSpec{KerasMNIST().Optimizer, adamW, {Name: "sgd", LearningRate: 0.01, Momentum: 0.9}}
	for _, dtype := range []string{"float32", "float64"} {
		for i, opt := range opts {
			t.Run(fmt.Sprintf("%s/%d-%s", dtype, i, opt.Name), func(t *testing.T) {
				plain, b := trainedOf(t, dtype, opt)
				keeping, _ := trainedOf(t, dtype, opt)
				var s Snapshot
				for step := uint64(3); step < 6; step++ {
					params, state := paramsOf(keeping), keeping.Optimizer().State()
					plain.ComputeGradients(b, step)
					plain.ApplyGradients()
					keeping.ComputeGradients(b, step)
					keeping.ApplyGradientsKeeping(&s)
					if !sameBits(paramsOf(plain), paramsOf(keeping)) || !sameState(plain.Optimizer().State(), keeping.Optimizer().State()) {
						t.Fatalf("step %d: the model differs from ApplyGradients's", step)
					}
					if err := keeping.LoadSnapshot(&s); err != nil {
						t.Fatal(err)
					}
					if !sameBits(params, paramsOf(keeping)) || !sameState(state, keeping.Optimizer().State()) {
						t.Fatalf("step %d: the snapshot does not hold the state before the update", step)
					}
					keeping.ApplyGradientsKeeping(&s) // the step again, from the restored state
				}
			})
		}
	}
}
