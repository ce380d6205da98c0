package nn

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// trainedModel returns a small model after a few steps of training on random
// data, so that its optimiser state is not zero.
func trainedModel(t testing.TB) (*Model, *Batch) {
	t.Helper()
	spec := KerasMNIST()
	spec.InputShape = []int{12}
	spec.Layers[0].KernelRegularizer = &Regularizer{L2: 0.01}
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(11)
	b := randomBatch(m, 8, false, rand.New(rand.NewPCG(1, 1)))
	for step := uint64(0); step < 3; step++ {
		m.ComputeGradients(b, step)
		m.ApplyGradients()
	}
	return m, b
}

func TestCheckpointRoundTripContinuesTraining(t *testing.T) {
	m, b := trainedModel(t)
	path := filepath.Join(t.TempDir(), "model.ckpt")
	if err := SaveCheckpoint(path, m.Checkpoint(2, 3)); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Epoch != 2 || c.Step != 3 {
		t.Fatalf("epoch %d step %d, want 2 and 3", c.Epoch, c.Step)
	}
	restored, err := c.Model()
	if err != nil {
		t.Fatal(err)
	}
	// One more step on both: the restored model must follow bit for bit.
	for _, mm := range []*Model{m, restored} {
		mm.ComputeGradients(b, 3)
		mm.ApplyGradients()
	}
	if !slices.Equal(m.Params(), restored.Params()) {
		t.Fatal("restored model diverged from the original after one step")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("save left %d files behind, want only the checkpoint", len(entries))
	}
}

func TestCheckpointRejectsDamage(t *testing.T) {
	m, _ := trainedModel(t)
	good, err := m.Checkpoint(0, 3).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	badMagic := slices.Clone(good)
	badMagic[0] = 'X'
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"truncated", good[:len(good)-100], "checksum mismatch"},
		{"altered byte", flipped, "checksum mismatch"},
		{"bad magic", badMagic, "bad magic"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCheckpoint(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", c.name, err, c.want)
		}
	}
}

func FuzzCheckpoint(f *testing.F) {
	m, _ := trainedModel(f)
	good, _ := m.Checkpoint(1, 3).MarshalBinary()
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte(checkpointMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Checkpoint
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var c2 Checkpoint
		if err := c2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
	})
}

func TestSnapshotUndoesAStep(t *testing.T) {
	m, b := trainedModel(t)
	var s Snapshot
	m.SaveSnapshot(&s)
	before := slices.Clone(m.Params())
	iters := m.Optimizer().Iterations()
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	if slices.Equal(before, m.Params()) {
		t.Fatal("the step changed nothing")
	}
	if err := m.LoadSnapshot(&s); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, m.Params()) || m.Optimizer().Iterations() != iters {
		t.Fatal("restoring the snapshot did not undo the step")
	}
	// The same step again gives the same result as the first time.
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	again := slices.Clone(m.Params())
	m.LoadSnapshot(&s)
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	if !slices.Equal(again, m.Params()) {
		t.Fatal("a replayed step differs")
	}
}

// TestCheckpointCarriesDtype checks that a checkpoint names its model's
// dtype, the default included, that a float64 model comes back float64,
// and that a description without a dtype (a checkpoint written before
// dtypes existed) loads as a float32 model with its values unchanged.
func TestCheckpointCarriesDtype(t *testing.T) {
	for _, dtype := range []string{"", "float32", "float64"} {
		spec := mlp(64)
		spec.Dtype = dtype
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		m.Initialize(1)
		data, err := m.Checkpoint(0, 0).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var c Checkpoint
		if err := c.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"": "float32", "float32": "float32", "float64": "float64"}[dtype]
		if c.Spec.Dtype != want {
			t.Fatalf("model dtype %q: checkpoint says %q, want %q", dtype, c.Spec.Dtype, want)
		}
		if !strings.Contains(string(c.Spec.JSON()), `"dtype": "`+want+`"`) {
			t.Fatalf("model dtype %q: the stored description does not name it:\n%s", dtype, c.Spec.JSON())
		}
	}
	// A version-1 file from before: the description has no dtype.
	old, err := New(mlp(64))
	if err != nil {
		t.Fatal(err)
	}
	old.Initialize(2)
	c := &Checkpoint{Spec: old.Spec(), Params: slices.Clone(old.Params()), Optimizer: old.Optimizer().State()}
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Checkpoint
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	m, err := back.Model()
	if err != nil {
		t.Fatalf("a checkpoint without dtype: %v", err)
	}
	if m.Spec().DtypeOrDefault() != "float32" || !slices.Equal(m.Params(), old.Params()) {
		t.Fatalf("a checkpoint without dtype loads as %s with changed values", m.Spec().DtypeOrDefault())
	}
}
