package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/proto"

	"ringtrain/internal/nn"
	"ringtrain/internal/sampler"
	pb "ringtrain/proto"
)

// The fuzz inputs are streams of chunks, each a uvarint length followed by
// that many bytes of protobuf: whatever a peer could send.

func encodeChunks[T proto.Message](msgs []T) []byte {
	var b []byte
	for _, m := range msgs {
		enc, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// decodeChunks splits data into chunks; ok is false when data is not a
// sequence of well-formed protobuf messages.
func decodeChunks[T proto.Message](data []byte, newT func() T) (msgs []T, ok bool) {
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return nil, false
		}
		m := newT()
		if proto.Unmarshal(data[k:k+int(n)], m) != nil {
			return nil, false
		}
		msgs, data = append(msgs, m), data[k+int(n):]
	}
	return msgs, true
}

// FuzzReceiveState feeds arbitrary state streams to ReceiveState: no panic,
// no allocation beyond the model's size, and a state it accepts has the
// announced shape and sends and reads back to the same values.
func FuzzReceiveState(f *testing.F) {
	const maxParams = 64
	params := []float64{1, -2, 3.5, 0}
	var s stream[*pb.StateChunk]
	SendState(s.send, &State{Header: &pb.StateHeader{JobId: "j", Step: 2}, Params: params,
		Opt: nn.OptimizerState{Iterations: 2, Slots: []nn.Slot{{Name: "m", Values: params}, {Name: "v", Values: params}}}})
	f.Add(encodeChunks(s.msgs))
	f.Add(encodeChunks(s.msgs[:1]))
	f.Add(encodeChunks([]*pb.StateChunk{{Header: &pb.StateHeader{Params: 1 << 40}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, ok := decodeChunks(data, func() *pb.StateChunk { return new(pb.StateChunk) })
		if !ok {
			return
		}
		in := stream[*pb.StateChunk]{msgs: msgs}
		st, err := ReceiveState(in.recv, maxParams)
		if err != nil {
			return
		}
		if uint64(len(st.Params)) != st.Header.Params || st.Header.Params > maxParams || len(st.Opt.Slots) != len(st.Header.Slots) {
			t.Fatalf("accepted a state of %d parameters and %d slots, header %v", len(st.Params), len(st.Opt.Slots), st.Header)
		}
		var out stream[*pb.StateChunk]
		if err := SendState(out.send, st); err != nil {
			t.Fatal(err)
		}
		again, err := ReceiveState(out.recv, maxParams)
		if err != nil {
			t.Fatalf("an accepted state does not read back: %v", err)
		}
		if !bytes.Equal(AppendFloats(nil, again.Params), AppendFloats(nil, st.Params)) {
			t.Fatal("parameters changed on a round trip")
		}
	})
}

// FuzzReceiveShard feeds arbitrary shard streams to ReceiveShard for a
// worker owning lanes 0 and 1 of 2×2 images: no panic, and a shard it
// accepts is consistent (ids, labels and lanes cover the images it holds).
func FuzzReceiveShard(f *testing.F) {
	data := testSet(40)
	plan, _ := sampler.NewPlan(data.Count, 4, 5)
	var s stream[*pb.ShardChunk]
	SendShard(s.send, data, plan.Range(0, 2))
	f.Add(encodeChunks(s.msgs))
	f.Add(encodeChunks(s.msgs[:1]))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, ok := decodeChunks(b, func() *pb.ShardChunk { return new(pb.ShardChunk) })
		if !ok {
			return
		}
		in := stream[*pb.ShardChunk]{msgs: msgs}
		sh, err := ReceiveShard(in.recv, 0, 2, plan.StepsPerEpoch(), 5, 4)
		if err != nil {
			return
		}
		n := sh.Data.Count
		if len(sh.SampleIDs) != n || len(sh.Data.Labels) != n || len(sh.Data.Pixels) != 4*n || len(sh.Lanes.Members) != 2 {
			t.Fatalf("inconsistent shard: %d images, %d ids, %d labels, %d lanes", n, len(sh.SampleIDs), len(sh.Data.Labels), len(sh.Lanes.Members))
		}
		seen := 0
		for _, lane := range sh.Lanes.Members {
			if len(lane) < plan.StepsPerEpoch() {
				t.Fatalf("lane of %d images for %d steps", len(lane), plan.StepsPerEpoch())
			}
			for _, i := range lane {
				if i != seen {
					t.Fatalf("lane member %d, want %d", i, seen)
				}
				seen++
			}
		}
		for _, l := range sh.Data.Labels {
			if l > 9 {
				t.Fatalf("label %d accepted", l)
			}
		}
	})
}
