package ringrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"ringtrain/internal/grpcopts"
	pb "ringtrain/proto"
)

// Ring frames carry most of a job's bytes, so they skip the generic
// protobuf path, which copies a received frame's data twice (into one
// contiguous buffer, then into a fresh []byte) and a sent frame's once more
// than needed. wireFrame is encoded and decoded by hand, in the protobuf
// wire format of ringtrain.v1.RingFrame: any protobuf implementation reads
// and writes the same bytes. Received data is handed to the all-reduce as
// views of gRPC's receive buffers, kept until the next frame.
//
// The codec is registered under the name "proto", replacing gRPC's default
// codec in this process: it handles *wireFrame itself and passes every
// other message to gRPC's protobuf codec unchanged.

func init() {
	encoding.RegisterCodecV2(frameCodec{next: encoding.GetCodecV2("proto")})
}

// wireFrame is a RingFrame as the transport sends and receives it.
type wireFrame struct {
	hello             *pb.Hello
	step, seq, length uint64
	kind              uint64
	origin            int32
	abort             string
	data              [][]byte // sent: copied at Marshal; received: views into held
	crc               uint32   // received: the CRC-32C the sender computed
	held              mem.BufferSlice
}

// castagnoli is the CRC-32C table; the hardware computes it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC-32C of data's parts.
func checksum(data [][]byte) uint32 {
	var c uint32
	for _, p := range data {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

// release frees the receive buffers the frame's data points into.
func (f *wireFrame) release() {
	if f.held != nil {
		f.held.Free()
		f.held = nil
	}
	f.data = nil
}

// RingFrame field numbers.
const (
	fieldHello  = 1
	fieldStep   = 2
	fieldSeq    = 3
	fieldLength = 4
	fieldData   = 5
	fieldAbort  = 6
	fieldOrigin = 7
	fieldKind   = 8
	fieldCRC    = 9
)

type frameCodec struct{ next encoding.CodecV2 }

func (frameCodec) Name() string { return "proto" }

func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*wireFrame)
	if !ok {
		return c.next.Marshal(v)
	}
	h := make([]byte, 0, 64)
	if f.hello != nil {
		b, err := proto.Marshal(f.hello)
		if err != nil {
			return nil, err
		}
		h = protowire.AppendTag(h, fieldHello, protowire.BytesType)
		h = protowire.AppendBytes(h, b)
	}
	for _, x := range []struct {
		num protowire.Number
		v   uint64
	}{{fieldStep, f.step}, {fieldSeq, f.seq}, {fieldLength, f.length}, {fieldOrigin, uint64(int64(f.origin))}, {fieldKind, f.kind}} {
		if x.v != 0 {
			h = protowire.AppendTag(h, x.num, protowire.VarintType)
			h = protowire.AppendVarint(h, x.v)
		}
	}
	if f.abort != "" {
		h = protowire.AppendTag(h, fieldAbort, protowire.BytesType)
		h = protowire.AppendString(h, f.abort)
	}
	n := 0
	for _, p := range f.data {
		n += len(p)
	}
	if n == 0 {
		return mem.BufferSlice{mem.SliceBuffer(h)}, nil
	}
	buf := grpcopts.Pool.Get(n)
	off := 0
	var crc uint32
	for _, p := range f.data {
		off += copy((*buf)[off:], p)
		crc = crc32.Update(crc, castagnoli, p)
	}
	h = protowire.AppendTag(h, fieldCRC, protowire.Fixed32Type)
	h = protowire.AppendFixed32(h, crc)
	// Data goes last, so that a receiver finds the header before it.
	h = protowire.AppendTag(h, fieldData, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(n))
	return mem.BufferSlice{mem.SliceBuffer(h), mem.NewBuffer(buf, grpcopts.Pool)}, nil
}

func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*wireFrame)
	if !ok {
		return c.next.Unmarshal(data, v)
	}
	f.release()
	*f = wireFrame{}
	cur := cursor{bufs: data}
	for !cur.done() {
		num, typ, err := cur.tag()
		if err != nil {
			return err
		}
		switch {
		case typ == protowire.VarintType:
			x, err := cur.varint()
			if err != nil {
				return err
			}
			switch num {
			case fieldStep:
				f.step = x
			case fieldSeq:
				f.seq = x
			case fieldLength:
				f.length = x
			case fieldKind:
				f.kind = x
			case fieldOrigin:
				f.origin = int32(x)
			}
		case typ == protowire.BytesType:
			n, err := cur.varint()
			if err != nil {
				return err
			}
			parts, err := cur.take(n)
			if err != nil {
				return err
			}
			switch num {
			case fieldData:
				f.data = parts
			case fieldAbort:
				f.abort = string(join(parts))
			case fieldHello:
				f.hello = &pb.Hello{}
				if err := proto.Unmarshal(join(parts), f.hello); err != nil {
					return fmt.Errorf("ringrpc: hello: %w", err)
				}
			}
		case typ == protowire.Fixed64Type:
			if _, err := cur.take(8); err != nil {
				return err
			}
		case typ == protowire.Fixed32Type:
			parts, err := cur.take(4)
			if err != nil {
				return err
			}
			if num == fieldCRC {
				f.crc = binary.LittleEndian.Uint32(join(parts))
			}
		default:
			return fmt.Errorf("ringrpc: frame field %d has wire type %d", num, typ)
		}
	}
	if f.data != nil {
		data.Ref() // gRPC frees data after Unmarshal; the views outlive it
		f.held = data
	}
	return nil
}

func join(parts [][]byte) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// cursor reads protobuf wire data spread over gRPC buffers.
type cursor struct {
	bufs mem.BufferSlice
	i    int // current buffer
	off  int // offset in it
}

var errTruncated = errors.New("ringrpc: truncated frame")

func (c *cursor) done() bool {
	for c.i < len(c.bufs) && c.off == c.bufs[c.i].Len() {
		c.i, c.off = c.i+1, 0
	}
	return c.i == len(c.bufs)
}

func (c *cursor) byte() (byte, error) {
	if c.done() {
		return 0, errTruncated
	}
	b := c.bufs[c.i].ReadOnlyData()[c.off]
	c.off++
	return b, nil
}

func (c *cursor) varint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		b, err := c.byte()
		if err != nil {
			return 0, err
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("ringrpc: varint overflows 64 bits")
}

func (c *cursor) tag() (protowire.Number, protowire.Type, error) {
	x, err := c.varint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(x)
	if num < protowire.MinValidNumber {
		return 0, 0, fmt.Errorf("ringrpc: invalid field number %d", num)
	}
	return num, typ, nil
}

// take returns the next n bytes as views of the buffers they lie in.
func (c *cursor) take(n uint64) ([][]byte, error) {
	var parts [][]byte
	for n > 0 {
		if c.done() {
			return nil, errTruncated
		}
		b := c.bufs[c.i].ReadOnlyData()[c.off:]
		k := uint64(len(b))
		if k > n {
			k = n
		}
		parts = append(parts, b[:k])
		c.off += int(k)
		n -= k
	}
	return parts, nil
}
