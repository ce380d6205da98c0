package nn

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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
	spec := smallSpec()
	spec.Layers[0].KernelRegularizer = &Regularizer{L2: 0.01}
	return trainedSpec(t, spec)
}

// smallSpec is the Keras example on 12 inputs.
func smallSpec() Spec {
	spec := KerasMNIST()
	spec.InputShape = []int{12}
	return spec
}

// trainedSpec returns a model of spec after three steps of training on a
// random batch, and the batch.
func trainedSpec(t testing.TB, spec Spec) (*Model, *Batch) {
	t.Helper()
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
	if !slices.Equal(paramsOf(m), paramsOf(restored)) {
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
	before := paramsOf(m)
	iters := m.Optimizer().Iterations()
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	if slices.Equal(before, paramsOf(m)) {
		t.Fatal("the step changed nothing")
	}
	if err := m.LoadSnapshot(&s); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, paramsOf(m)) || m.Optimizer().Iterations() != iters {
		t.Fatal("restoring the snapshot did not undo the step")
	}
	// The same step again gives the same result as the first time.
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	again := paramsOf(m)
	m.LoadSnapshot(&s)
	m.ComputeGradients(b, 3)
	m.ApplyGradients()
	if !slices.Equal(again, paramsOf(m)) {
		t.Fatal("a replayed step differs")
	}
}

// TestCheckpointCarriesDtype checks that a checkpoint names its model's
// dtype, the default included, and that a float64 model comes back
// float64.
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
}

// TestVersion1CheckpointLoadsConverted reads version-1 files, written when
// models held float64 in memory whatever their dtype: a float32 model's
// (its description without a dtype, as before dtypes existed, or naming
// float32) loads with its values rounded to float32, a float64 model's
// with its values exact.
func TestVersion1CheckpointLoadsConverted(t *testing.T) {
	for _, dtype := range []string{"", "float32", "float64"} {
		spec := mlp(64)
		spec.Dtype = dtype
		old, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		old.Initialize(2)
		// Values with bits below float32's precision, as a float64-era
		// float32 model had.
		params := paramsOf(old)
		for i := range params {
			params[i] += 1e-12 * float64(i%7+1)
		}
		v1 := marshalVersion1(t, &Checkpoint{Spec: spec, Params: params, Optimizer: old.Optimizer().State()})
		var back Checkpoint
		if err := back.UnmarshalBinary(v1); err != nil {
			t.Fatalf("dtype %q: %v", dtype, err)
		}
		if back.Dtype != "float64" {
			t.Fatalf("dtype %q: a version-1 checkpoint holds %q values, want float64", dtype, back.Dtype)
		}
		m, err := back.Model()
		if err != nil {
			t.Fatalf("dtype %q: %v", dtype, err)
		}
		got := paramsOf(m)
		for i, v := range params {
			want := v
			if dtype != "float64" {
				want = float64(float32(v))
			}
			if got[i] != want {
				t.Fatalf("dtype %q: parameter %d loads as %v from %v, want %v", dtype, i, got[i], v, want)
			}
		}
		if want := map[string]string{"": "float32", "float32": "float32", "float64": "float64"}[dtype]; m.Dtype() != want {
			t.Fatalf("dtype %q: loads as a %s model, want %s", dtype, m.Dtype(), want)
		}
	}
}

// TestFloat32CheckpointRefusedByFloat64Model: float32 values cannot become
// a float64 model's; the error says what to do.
func TestFloat32CheckpointRefusedByFloat64Model(t *testing.T) {
	m, err := New(mlp(64))
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	c := m.Checkpoint(0, 0)
	c.Spec.Dtype = "float64"
	_, err = c.Model()
	if err == nil || !strings.Contains(err.Error(), `"dtype": "float32"`) {
		t.Fatalf("float32 values into a float64 model: error %v, want one naming the dtype to resume with", err)
	}
	// Written to a file, the mismatch cannot arise: the values are stored
	// in the description's dtype, which a reader checks.
	data, err := m.Checkpoint(0, 0).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Checkpoint
	if err := back.UnmarshalBinary(data); err != nil || back.Dtype != "float32" {
		t.Fatalf("a float32 checkpoint reads back as %q values (%v)", back.Dtype, err)
	}
	if want := paramsOf(m); !slices.Equal(back.Params, want) {
		t.Fatal("a float32 checkpoint does not round-trip its values")
	}
}

// marshalVersion1 encodes c in the version-1 format: no width field,
// float64 values.
func marshalVersion1(t *testing.T, c *Checkpoint) []byte {
	t.Helper()
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	b.Write(le.AppendUint32(nil, 1))
	spec := c.Spec.JSON()
	b.Write(le.AppendUint32(nil, uint32(len(spec))))
	b.Write(spec)
	for _, v := range []uint64{c.Seed, c.Epoch, c.Step} {
		b.Write(le.AppendUint64(nil, v))
	}
	writeFloats(&b, c.Params, 8)
	b.Write(le.AppendUint64(nil, c.Optimizer.Iterations))
	b.Write(le.AppendUint32(nil, uint32(len(c.Optimizer.Slots))))
	for _, s := range c.Optimizer.Slots {
		b.Write(le.AppendUint16(nil, uint16(len(s.Name))))
		b.WriteString(s.Name)
		writeFloats(&b, s.Values, 8)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}
