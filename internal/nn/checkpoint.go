package nn

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"ringtrain/internal/atomicfile"
)

// Checkpoint is everything needed to continue training a model: its
// description, parameters and optimiser state, where training stood, and the
// seed that fixes its data order and dropout masks.
type Checkpoint struct {
	Spec      Spec
	Seed      uint64
	Epoch     uint64
	Step      uint64
	Params    []float64
	Optimizer OptimizerState
	// Dtype is the type the values were held in, "float32" or "float64",
	// whatever the float64 they are handed over in here; empty means the
	// model's dtype. A checkpoint read from a version 1 file (written when
	// models held float64 whatever their dtype) has "float64".
	Dtype string
}

// The file format, version 2. All integers and floats are little-endian.
//
//	magic     8 bytes "RINGTRN\x00"
//	version   uint32 (2)
//	spec      uint32 length, then the model description as JSON, its
//	          dtype named
//	seed, epoch, step          uint64 each
//	width     uint8: 4 for float32 values, 8 for float64 (the dtype)
//	params    uint64 count, then count values
//	optimizer uint64 iterations, uint32 slot count, then per slot:
//	          uint16 name length, name, uint64 count, count values
//	checksum  SHA-256 of every byte before it
//
// Version 1 has no width field and float64 values whatever the dtype: it
// was written when models held float64 in memory. ReadCheckpoint reads both.
const (
	checkpointMagic   = "RINGTRN\x00"
	checkpointVersion = 2
	// maxCheckpointBytes bounds what ReadCheckpoint will read (1 GiB of
	// values is some 134 million parameters).
	maxCheckpointBytes = 1 << 30
)

// Checkpoint returns a copy of the model's state. Its description names
// the model's dtype even where the model's own left it to the default, so
// that the file says how it was trained whatever later defaults become,
// and its values are stored in that dtype.
func (m *Model) Checkpoint(epoch, step uint64) *Checkpoint {
	spec := m.spec
	spec.Dtype = spec.DtypeOrDefault()
	return &Checkpoint{Spec: spec, Seed: m.seed, Epoch: epoch, Step: step,
		Params: m.AppendParams(nil), Optimizer: m.opt.State(), Dtype: m.Dtype()}
}

// Model builds the model the checkpoint describes, with its parameters and
// optimiser state. Values held in float64 load into a float32 model
// rounded to float32: a checkpoint written before models held float32
// (version 1, or with no dtype in its description, which means float32)
// loads so. Values held in float32 do not load into a float64 model, whose
// exactness they could not give back: the error says what to do.
func (c *Checkpoint) Model() (*Model, error) {
	m, err := New(c.Spec)
	if err != nil {
		return nil, err
	}
	if c.Dtype == "float32" && m.Dtype() == "float64" {
		return nil, errors.New(`nn: checkpoint holds float32 values and its model description says "dtype": "float64": ` +
			`resume it with "dtype": "float32" in the description, or train the float64 model from the start`)
	}
	if len(c.Params) != m.NumParams() {
		return nil, fmt.Errorf("nn: checkpoint has %d parameters, its model description %d", len(c.Params), m.NumParams())
	}
	m.SetParams(c.Params)
	if err := m.opt.SetState(c.Optimizer); err != nil {
		return nil, err
	}
	m.seed = c.Seed
	return m, nil
}

// width is the bytes of a stored value: the model's dtype.
func (c *Checkpoint) width() int {
	if c.Spec.DtypeOrDefault() == "float64" {
		return 8
	}
	return 4
}

// MarshalBinary encodes the checkpoint in the versioned, checksummed format.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(checkpointMagic)
	b.Write(le.AppendUint32(nil, checkpointVersion))
	withDtype := c.Spec
	withDtype.Dtype = withDtype.DtypeOrDefault()
	spec := withDtype.JSON()
	b.Write(le.AppendUint32(nil, uint32(len(spec))))
	b.Write(spec)
	for _, v := range []uint64{c.Seed, c.Epoch, c.Step} {
		b.Write(le.AppendUint64(nil, v))
	}
	w := c.width()
	b.WriteByte(byte(w))
	writeFloats(&b, c.Params, w)
	b.Write(le.AppendUint64(nil, c.Optimizer.Iterations))
	b.Write(le.AppendUint32(nil, uint32(len(c.Optimizer.Slots))))
	for _, s := range c.Optimizer.Slots {
		if len(s.Name) > math.MaxUint16 {
			return nil, fmt.Errorf("nn: optimizer slot name of %d bytes", len(s.Name))
		}
		b.Write(le.AppendUint16(nil, uint16(len(s.Name))))
		b.WriteString(s.Name)
		writeFloats(&b, s.Values, w)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

// writeFloats writes the count of v and its values, each in width bytes
// (4: rounded to float32).
func writeFloats(b *bytes.Buffer, v []float64, width int) {
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(v))))
	buf := make([]byte, width*len(v))
	for i, x := range v {
		if width == 4 {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(x)))
		} else {
			binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(x))
		}
	}
	b.Write(buf)
}

// UnmarshalBinary decodes a checkpoint, verifying its checksum before it
// trusts any length, and its model description.
func (c *Checkpoint) UnmarshalBinary(data []byte) error {
	const minLen = len(checkpointMagic) + 4 + sha256.Size
	if len(data) < minLen {
		return fmt.Errorf("truncated: %d bytes, a checkpoint has at least %d", len(data), minLen)
	}
	if string(data[:len(checkpointMagic)]) != checkpointMagic {
		return errors.New("not a ringtrain checkpoint (bad magic)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return errors.New("checksum mismatch: the file is truncated or altered")
	}
	r := &reader{b: body[len(checkpointMagic):]}
	version := r.u32()
	if version != 1 && version != checkpointVersion && r.err == nil {
		return fmt.Errorf("version %d, this build reads versions 1 and %d", version, checkpointVersion)
	}
	specJSON := r.bytes(int(r.u32()))
	var out Checkpoint
	out.Seed, out.Epoch, out.Step = r.u64(), r.u64(), r.u64()
	r.width, out.Dtype = 8, "float64"
	if version > 1 {
		switch r.width = int(r.u8()); r.width {
		case 4:
			out.Dtype = "float32"
		case 8:
		default:
			if r.err == nil {
				r.err = fmt.Errorf("malformed: values of %d bytes", r.width)
			}
		}
	}
	out.Params = r.floats()
	out.Optimizer.Iterations = r.u64()
	nSlots := r.u32()
	for i := uint32(0); i < nSlots && r.err == nil; i++ {
		name := string(r.bytes(int(r.u16())))
		out.Optimizer.Slots = append(out.Optimizer.Slots, Slot{Name: name, Values: r.floats()})
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d unexpected bytes before the checksum", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	spec, err := ParseSpec(specJSON)
	if err != nil {
		return err
	}
	out.Spec = spec
	if version > 1 && out.Dtype != spec.DtypeOrDefault() {
		return fmt.Errorf("malformed: %s values for a %s model", out.Dtype, spec.DtypeOrDefault())
	}
	*c = out
	return nil
}

// reader decodes little-endian values, remembering the first overrun;
// floats reads values of width bytes.
type reader struct {
	b     []byte
	err   error
	width int
}

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("malformed: a field of %d bytes with %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) floats() []float64 {
	n := r.u64()
	if r.err == nil && n > uint64(len(r.b)/r.width) {
		r.err = fmt.Errorf("malformed: %d values with %d bytes left", n, len(r.b))
	}
	b := r.bytes(int(n) * r.width)
	if b == nil {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		if r.width == 4 {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		} else {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return out
}

// SaveCheckpoint writes c to path atomically: to a temporary file in the same
// folder, synced, then renamed over path, and the folder synced, so that a
// crash leaves either the old file or the new one.
func SaveCheckpoint(path string, c *Checkpoint) error {
	data, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("nn: save checkpoint %s: %w", path, err)
	}
	return nil
}

// LoadCheckpoint reads and verifies the checkpoint at path.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nn: load checkpoint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCheckpointBytes+1))
	if err != nil {
		return nil, fmt.Errorf("nn: load checkpoint %s: %w", path, err)
	}
	if len(data) > maxCheckpointBytes {
		return nil, fmt.Errorf("nn: load checkpoint %s: larger than %d bytes", path, maxCheckpointBytes)
	}
	var c Checkpoint
	if err := c.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("nn: load checkpoint %s: %w", path, err)
	}
	return &c, nil
}
