package allreduce_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// aheadTransport is rank 0 of two whose left-hand neighbour has sent every
// frame of the collective before rank 0's first frame reached it, as a
// neighbour that does not wait (or a frame corrupted on the way) may: the
// all-gather frame, which overwrites the chunk rank 0 sends in the
// reduce-scatter, is there at once. It shares no memory and no lock
// between Send and Recv, so that only the ring can order them.
type aheadTransport struct {
	frames []allreduce.Frame // what the left-hand neighbour sent, in order
	sent   [][]float64       // the values of the frames rank 0 sent
}

func (a *aheadTransport) Rank() int             { return 0 }
func (a *aheadTransport) Size() int             { return 2 }
func (a *aheadTransport) Left() allreduce.Peer  { return allreduce.Peer{Rank: 1} }
func (a *aheadTransport) Right() allreduce.Peer { return allreduce.Peer{Rank: 1} }
func (a *aheadTransport) Close() error          { return nil }

func (a *aheadTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	runtime.Gosched() // give the receive its chance to run first
	v := make([]float64, f.DataLen()/8)
	allreduce.SetPartsForTest(v, f.Data)
	a.sent = append(a.sent, v)
	return nil
}

func (a *aheadTransport) Recv(ctx context.Context, f *allreduce.Frame) error {
	*f, a.frames = a.frames[0], a.frames[1:]
	return nil
}

// TestAllGatherWaitsForTheSendItOverwrites runs rank 0's side of a
// collective whose left-hand neighbour sent ahead, with and without
// receiving in place: the all-gather frame must not be written into the
// vector while the reduce-scatter send of the same chunk still reads it.
// Under -race, a ring that does not wait for that send is a data race; in
// any build, it may send the all-gather's values as its own.
func TestAllGatherWaitsForTheSendItOverwrites(t *testing.T) {
	own := []float64{1, 2, 3, 4}
	frame := func(seq uint32, values ...float64) allreduce.Frame {
		return allreduce.Frame{Step: 1, Seq: seq, Length: 4, Kind: allreduce.Float64, Data: [][]byte{allreduce.EncodeForTest(values)}}
	}
	for _, into := range []bool{false, true} {
		name := "recv"
		if into {
			name = "into"
		}
		t.Run(name, func(t *testing.T) {
			for range 20 {
				ahead := &aheadTransport{frames: []allreduce.Frame{
					frame(0, 30, 40),   // rank 1's chunk 1, to add
					frame(1, 110, 220), // the sum of chunk 0, as rank 1 computed it
				}}
				var tr allreduce.Transport = ahead
				if into {
					tr = &intoTransport{Transport: ahead}
				}
				v := slices.Clone(own)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := allreduce.New(tr, allreduce.Config{}).AllReduce(ctx, 1, v, allreduce.Sum)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if want := [][]float64{{1, 2}, {33, 44}}; !slices.EqualFunc(ahead.sent, want, slices.Equal) {
					t.Fatalf("rank 0 sent %v, want its own chunk 0 then its sum of chunk 1: %v", ahead.sent, want)
				}
				if want := []float64{110, 220, 33, 44}; !slices.Equal(v, want) {
					t.Fatalf("result %v, want %v", v, want)
				}
				if into && tr.(*intoTransport).inPlace != 1 {
					t.Fatalf("%d frames received in place, want the all-gather's", tr.(*intoTransport).inPlace)
				}
			}
		})
	}
}
