package wire

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
	"ringtrain/internal/sampler"
	pb "ringtrain/proto"
)

// stream records what a sender sends and replays it to a receiver.
type stream[T any] struct {
	msgs []T
	i    int
}

func (s *stream[T]) send(m T) error { s.msgs = append(s.msgs, m); return nil }

func (s *stream[T]) recv() (T, error) {
	var zero T
	if s.i == len(s.msgs) {
		return zero, io.EOF
	}
	s.i++
	return s.msgs[s.i-1], nil
}

func TestStateRoundTripInChunks(t *testing.T) {
	params := make([]float64, ChunkBytes/8+10) // two chunks
	for i := range params {
		params[i] = float64(i) * 0.5
	}
	m := slices.Clone(params)
	st := &State{Header: &pb.StateHeader{JobId: "j", Step: 3}, Params: params,
		Opt: nn.OptimizerState{Iterations: 3, Slots: []nn.Slot{{Name: "m", Values: m}}}}
	var s stream[*pb.StateChunk]
	if err := SendState(s.send, st); err != nil {
		t.Fatal(err)
	}
	if len(s.msgs) < 3 {
		t.Fatalf("%d chunks, want the state split into several", len(s.msgs))
	}
	for _, c := range s.msgs {
		if len(c.Data) > ChunkBytes {
			t.Fatalf("chunk of %d bytes", len(c.Data))
		}
	}
	got, err := ReceiveState(s.recv, uint64(len(params)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Params, params) || !slices.Equal(got.Opt.Slots[0].Values, m) || got.Opt.Iterations != 3 {
		t.Fatal("state changed on the way")
	}
}

func TestReceiveStateRejectsBadStreams(t *testing.T) {
	good := func() []*pb.StateChunk {
		var s stream[*pb.StateChunk]
		SendState(s.send, &State{Header: &pb.StateHeader{}, Params: []float64{1, 2, 3}})
		return s.msgs
	}
	cases := []struct {
		name   string
		mutate func([]*pb.StateChunk) []*pb.StateChunk
		max    uint64
		want   string
	}{
		{"no header", func(m []*pb.StateChunk) []*pb.StateChunk { m[0].Header = nil; return m }, 3, "does not start with a header"},
		{"too many parameters", func(m []*pb.StateChunk) []*pb.StateChunk { return m }, 2, "state of 3 parameters, the model has 2"},
		{"short", func(m []*pb.StateChunk) []*pb.StateChunk { m[0].Data = m[0].Data[:16]; return m }, 3, "ended after 2 of 3 values"},
		{"overrun", func(m []*pb.StateChunk) []*pb.StateChunk {
			m[0].Data = append(m[0].Data, m[0].Data[:8]...)
			return m
		}, 3, "overruns 3 values"},
		{"ragged bytes", func(m []*pb.StateChunk) []*pb.StateChunk { m[0].Data = m[0].Data[:5]; return m }, 3, "chunk of 5 bytes"},
		{"gap", func(m []*pb.StateChunk) []*pb.StateChunk {
			return append(m, &pb.StateChunk{Offset: 7, Data: make([]byte, 8)})
		}, 3, "state chunk at value 7, expected 3"},
	}
	for _, c := range cases {
		s := stream[*pb.StateChunk]{msgs: c.mutate(good())}
		_, err := ReceiveState(s.recv, c.max)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func testSet(n int) *mnist.Set {
	img := &mnist.Images{Count: n, Rows: 2, Cols: 2, Pixels: make([]byte, 4*n)}
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 10)
		img.Pixels[4*i] = byte(i)
	}
	s, _ := mnist.NewSet(img, labels)
	return s
}

func TestShardRoundTrip(t *testing.T) {
	data := testSet(3000)
	plan, _ := sampler.NewPlan(data.Count, 8, 5)
	lanes := plan.Range(2, 4)
	var s stream[*pb.ShardChunk]
	if err := SendShard(s.send, data, lanes); err != nil {
		t.Fatal(err)
	}
	sh, err := ReceiveShard(s.recv, 2, 4, plan.StepsPerEpoch(), 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sh.SampleIDs, lanes.Samples()) {
		t.Fatal("sample ids changed on the way")
	}
	// The worker's first batch, mapped to global ids, is the plan's.
	want := lanes.Epoch(0).Batch(0, nil)
	var got []int
	for _, i := range sh.Lanes.Epoch(0).Batch(0, nil) {
		got = append(got, sh.SampleIDs[i])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("first batch %v, want %v", got, want)
	}
	for i, id := range sh.SampleIDs {
		if sh.Data.Labels[i] != data.Labels[id] || sh.Data.Image(i)[0] != data.Image(id)[0] {
			t.Fatalf("image %d does not match sample %d", i, id)
		}
	}
}

func TestReceiveShardRejectsBadStreams(t *testing.T) {
	data := testSet(100)
	plan, _ := sampler.NewPlan(data.Count, 4, 5)
	good := func() []*pb.ShardChunk {
		var s stream[*pb.ShardChunk]
		SendShard(s.send, data, plan.Range(0, 2))
		return s.msgs
	}
	cases := []struct {
		name   string
		mutate func([]*pb.ShardChunk)
		lanes  int
		want   string
	}{
		{"lane count", func([]*pb.ShardChunk) {}, 3, "shard holds 2 lanes from lane 0, this worker owns 3 from lane 0"},
		{"first lane", func(m []*pb.ShardChunk) { m[0].FirstLane = 1 }, 2, "from lane 1, this worker owns 2 from lane 0"},
		{"wrapping size", func(m []*pb.ShardChunk) { m[0].Rows, m[0].Cols = 2147483650, 2 }, 2, "shard images are 2147483650×2"},
		{"image size", func(m []*pb.ShardChunk) { m[0].Rows = 3 }, 2, "shard images are 3×2"},
		{"label", func(m []*pb.ShardChunk) { m[0].Labels[1] = 12 }, 2, "image 1 has label 12"},
		{"pixels", func(m []*pb.ShardChunk) { m[0].Pixels = m[0].Pixels[:7] }, 2, "pixel bytes"},
		{"total", func(m []*pb.ShardChunk) { m[0].TotalImages++ }, 2, "announces 51 images, its lanes 50"},
		{"short lane", func(m []*pb.ShardChunk) { m[0].LaneSizes[0] = 3 }, 2, "fewer than the 25 steps"},
	}
	for _, c := range cases {
		msgs := good()
		c.mutate(msgs)
		s := stream[*pb.ShardChunk]{msgs: msgs}
		_, err := ReceiveShard(s.recv, 0, c.lanes, plan.StepsPerEpoch(), 5, 4)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	boom := errors.New("boom")
	if _, err := ReceiveShard(func() (*pb.ShardChunk, error) { return nil, boom }, 0, 2, 1, 5, 4); !errors.Is(err, boom) {
		t.Errorf("stream error: %v", err)
	}
}

func TestWeightsHashesDistinguish(t *testing.T) {
	a, b := []float64{1, 2, 3}, []float64{1, 2, 3.0000000001}
	ha, _ := WeightsHash(a, nil)
	hb, _ := WeightsHash(b, nil)
	if ha == hb || WeightsSHA256(a) == WeightsSHA256(b) {
		t.Fatal("hashes do not tell different weights apart")
	}
}
