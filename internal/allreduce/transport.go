package allreduce

import (
	"context"
	"errors"
	"fmt"
)

// Frame is one message from a rank to its right-hand neighbour.
type Frame struct {
	// Step identifies the collective; Seq numbers the frames within it.
	Step uint64
	Seq  uint32
	// Length is the length of the vector being reduced and Kind its element
	// type, carried by every frame so that ranks that disagree find out at
	// the first frame.
	Length uint64
	Kind   Kind
	// Data holds the values of one segment as little-endian 8-byte
	// elements, in one or more parts whose concatenation is the segment (a
	// transport may hand over its receive buffers as they are). A part may
	// end in the middle of an element.
	Data [][]byte
	// Abort, when not empty, says that rank Origin gave up the collective
	// and why; such a frame carries no data.
	Abort  string
	Origin int
}

// Kind is the element type of a reduced vector.
type Kind uint8

// The element types.
const (
	Float64 Kind = iota
	Int64
	// Float32 values travel two to an 8-byte element.
	Float32
	// Float16 and BFloat16 values travel four to an 8-byte element (see
	// AllReduce16).
	Float16
	BFloat16
)

func (k Kind) String() string {
	switch k {
	case Int64:
		return "int64"
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case BFloat16:
		return "bfloat16"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// DataLen is the number of bytes in f.Data.
func (f *Frame) DataLen() int {
	n := 0
	for _, p := range f.Data {
		n += len(p)
	}
	return n
}

// Peer names a rank for error messages.
type Peer struct {
	Rank int
	Addr string
}

func (p Peer) String() string {
	if p.Addr == "" {
		return fmt.Sprintf("rank %d", p.Rank)
	}
	return fmt.Sprintf("rank %d (%s)", p.Rank, p.Addr)
}

// Transport connects one rank of a ring to its neighbours: it sends to the
// right-hand neighbour, rank+1 mod size, and receives from the left-hand one,
// rank−1 mod size. Frames arrive in the order they were sent.
//
// One goroutine may call Send while another calls Recv; neither method may be
// called by two goroutines at once. When ctx ends during a call, or a call
// fails, the transport is broken: every later call fails and the caller must
// Close it and form a new ring. A transport whose directions share that
// state should report a call that failed only because of the other
// direction's failure with an error wrapping ErrBroken and the first
// failure, so that the collective reports the fault and not its echo. Close unblocks pending calls, and the
// neighbours' calls fail promptly once it is closed, as they would if the
// process died. Frames sent but not yet received when a transport closes
// may be lost: close a ring only once every rank is done with it.
type Transport interface {
	Rank() int
	Size() int
	Left() Peer
	Right() Peer
	// Send delivers f to the right-hand neighbour. It may return before the
	// frame is received; the caller may reuse f.Data's memory once Send
	// returns.
	Send(ctx context.Context, f *Frame) error
	// Recv overwrites f with the next frame from the left-hand neighbour.
	// f.Data's memory stays valid until the next Recv or Close.
	Recv(ctx context.Context, f *Frame) error
	Close() error
}

// RecvIntoer is a Transport that can receive a frame's data straight into
// the caller's memory, saving a copy of the all-gather phase's frames.
type RecvIntoer interface {
	// RecvInto is Recv, except that a frame of data whose payload is
	// len(dst) bytes is read into dst, and f.Data is then dst alone; any
	// other frame is received as Recv receives it. dst's contents are
	// undefined after an error.
	RecvInto(ctx context.Context, f *Frame, dst []byte) error
}

// ErrBroken is wrapped by the error of a transport call that failed because
// an earlier call, in either direction, broke the transport: the earlier
// call's error, not this one, says what went wrong.
var ErrBroken = errors.New("transport broken")
