package worker

import (
	"math"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// TestBackupUndoesTheLastStep trains two replicas of a float32 and a
// float64 model, then one step more: restoring each worker's backup, as a
// rollback does (prepare's RestoreBackup), gives back the parameters and
// the optimiser state from before that step, bit for bit.
func TestBackupUndoesTheLastStep(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(640))
	for _, dtype := range []string{"float32", "float64"} {
		t.Run(dtype, func(t *testing.T) {
			spec := nn.KerasMNIST()
			spec.Dtype = dtype
			rep := newReplicas(t, spec, data, 2, 16, 0, 1)
			defer rep.close()
			if _, err := rep.train(t, 3); err != nil {
				t.Fatal(err)
			}
			var before [][]float64
			for _, st := range rep.steppers {
				before = append(before, stateBits(st.model))
			}
			if _, err := rep.train(t, 1); err != nil {
				t.Fatal(err)
			}
			for r, st := range rep.steppers {
				if equalBits(stateBits(st.model), before[r]) {
					t.Fatalf("rank %d: the step changed nothing", r)
				}
				if err := st.model.LoadSnapshot(st.backup); err != nil {
					t.Fatal(err)
				}
				if !equalBits(stateBits(st.model), before[r]) {
					t.Errorf("rank %d: the restored backup is not the state before the step", r)
				}
			}
		})
	}
}

// stateBits is m's parameters, iteration count and optimiser slots, in
// float64 (a float32 model's widened, exactly).
func stateBits(m *nn.Model) []float64 {
	s := m.Optimizer().State()
	v := append(paramsOf(m), float64(s.Iterations))
	for _, sl := range s.Slots {
		v = append(v, sl.Values...)
	}
	return v
}

// equalBits reports whether a and b hold the same values bit for bit.
func equalBits(a, b []float64) bool {
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
