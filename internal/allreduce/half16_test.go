package allreduce_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// tamperingTransport changes every frame it sends, as a faulty or
// hostile peer would.
type tamperingTransport struct {
	allreduce.Transport
	tamper func(f *allreduce.Frame)
}

func (t *tamperingTransport) Send(ctx context.Context, f *allreduce.Frame) error {
	if f.Abort != "" {
		return t.Transport.Send(ctx, f)
	}
	g := *f
	g.Data = [][]byte{append([]byte(nil), f.Data[0]...)}
	t.tamper(&g)
	return t.Transport.Send(ctx, &g)
}

// TestHalf16BadFrames has rank 0 of 3 send float16 frames labelled with
// another kind, a different length, or data a float16 value short or an
// element long: its right-hand neighbour, rank 1, fails naming rank 0 and
// what was wrong, and no rank completes the collective with a sum.
func TestHalf16BadFrames(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(f *allreduce.Frame)
		want   string
	}{
		{"Kind", func(f *allreduce.Frame) { f.Kind = allreduce.Float32 }, "rank 0 reduces a vector of length 25 of float32"},
		{"UnknownKind", func(f *allreduce.Frame) { f.Kind = 9 }, "of kind 9, this rank one of length 25 of float16"},
		{"Length", func(f *allreduce.Frame) { f.Length++ }, "rank 0 reduces a vector of length 26"},
		{"ShortData", func(f *allreduce.Frame) { f.Data[0] = f.Data[0][:len(f.Data[0])-2] }, "bytes, want"},
		{"LongData", func(f *allreduce.Frame) { f.Data[0] = append(f.Data[0], make([]byte, 8)...) }, "bytes, want"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := allreduce.NewMemRing(3)
			ts[0] = &tamperingTransport{Transport: ts[0], tamper: c.tamper}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errs := make(chan error, 3)
			for r := range ts {
				go func() {
					ring := allreduce.New(ts[r], allreduce.DefaultConfig())
					v := make([]float32, 100)
					for i := range v {
						v[i] = float32(i)
					}
					err := ring.AllReduce16(ctx, 1, v, allreduce.Sum, allreduce.Compression{Kind: allreduce.Float16})
					if err != nil {
						ts[r].Close()
					}
					errs <- err
				}()
			}
			named := false
			for range ts {
				err := <-errs
				if err == nil {
					t.Fatal("a rank completed the collective despite rank 0's bad frames")
				}
				msg := err.Error()
				named = named || (strings.Contains(msg, "receive from rank 0") && strings.Contains(msg, c.want))
			}
			if !named {
				t.Fatalf("no rank named rank 0 and %q", c.want)
			}
		})
	}
}
