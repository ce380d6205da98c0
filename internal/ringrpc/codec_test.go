package ringrpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "ringtrain/proto"
)

var codec = frameCodec{}

// split cuts b into buffers of at most n bytes, as gRPC's reads may.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(append([]byte(nil), b[:k]...)))
		b = b[k:]
	}
	return s
}

// TestFrameCodecIsProtobuf checks that hand-encoded frames are RingFrame
// messages to a protobuf decoder, and that protobuf-encoded RingFrames
// (data in the middle) decode by hand, from buffers cut anywhere.
func TestFrameCodecIsProtobuf(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, 100)
	f := &wireFrame{step: 7, seq: 3, length: 100, kind: 1, origin: -2, abort: "why", data: [][]byte{data[:10], data[10:]}}
	enc, err := codec.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m pb.RingFrame
	if err := proto.Unmarshal(enc.Materialize(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Step != 7 || m.Seq != 3 || m.Length != 100 || m.Kind != 1 || m.Origin != -2 || m.Abort != "why" || !bytes.Equal(m.Data, data) ||
		m.Crc32C != checksum([][]byte{data}) {
		t.Fatalf("protobuf read %+v", &m)
	}
	std, err := proto.Marshal(&pb.RingFrame{Step: 9, Seq: 4, Length: 5, Data: data, Abort: "x", Origin: 3, Kind: 1,
		Hello: &pb.Hello{JobId: "j", Generation: 2, FromRank: 1}, Crc32C: checksum([][]byte{data})})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 3, 16, 1 << 20} {
		var g wireFrame
		if err := codec.Unmarshal(split(std, size), &g); err != nil {
			t.Fatalf("buffers of %d: %v", size, err)
		}
		if g.step != 9 || g.seq != 4 || g.length != 5 || g.abort != "x" || g.origin != 3 || g.kind != 1 ||
			g.hello.GetJobId() != "j" || !bytes.Equal(join(g.data), data) || g.crc != checksum(g.data) {
			t.Fatalf("buffers of %d: decoded %+v", size, g)
		}
		g.release()
	}
}

func TestFrameCodecRejectsTruncation(t *testing.T) {
	enc, _ := codec.Marshal(&wireFrame{step: 1, length: 3, data: [][]byte{make([]byte, 24)}})
	b := enc.Materialize()
	for n := 1; n < len(b); n++ {
		var g wireFrame
		if err := codec.Unmarshal(split(b[:n], 7), &g); err == nil && g.data != nil && len(join(g.data)) == 24 {
			t.Fatalf("a frame cut at %d of %d bytes decoded whole", n, len(b))
		}
	}
}

// FuzzFrameCodec feeds arbitrary bytes to the frame decoder: it must not
// panic, and what it accepts must encode and decode to the same frame.
func FuzzFrameCodec(f *testing.F) {
	enc, _ := codec.Marshal(&wireFrame{step: 1, seq: 2, length: 1, data: [][]byte{make([]byte, 8)}, abort: "a"})
	f.Add(enc.Materialize(), 3)
	std, _ := proto.Marshal(&pb.RingFrame{Hello: &pb.Hello{JobId: "j"}})
	f.Add(std, 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var g wireFrame
		if err := codec.Unmarshal(split(b, max(1, cut%64)), &g); err != nil {
			return
		}
		again, err := codec.Marshal(&g)
		if err != nil {
			if g.hello != nil {
				return // hello messages with unknown fields may not re-encode
			}
			t.Fatal(err)
		}
		var h wireFrame
		if err := codec.Unmarshal(again, &h); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if h.step != g.step || h.seq != g.seq || h.length != g.length || h.abort != g.abort || !bytes.Equal(join(h.data), join(g.data)) {
			t.Fatalf("round trip changed the frame: %+v to %+v", g, h)
		}
	})
}
