package ringtcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// fakeLeft joins rank 1 of a ring of two whose rank 0 is the test: it
// returns rank 1's transport and the raw connection rank 0 writes frames
// on.
func fakeLeft(t *testing.T, maxFrame int) (*Transport, net.Conn) {
	t.Helper()
	lis0, err := net.Listen("tcp", "127.0.0.1:0") // rank 0 accepts rank 1's connection
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis0.Close() })
	svcs, addrs := startServices(t, 1, ServiceConfig{})
	addrs = []string{lis0.Addr().String(), addrs[0]}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() { // answer rank 1's hello
		c, err := lis0.Accept()
		if err != nil {
			accepted <- err
			return
		}
		t.Cleanup(func() { c.Close() })
		r := bufio.NewReader(c)
		pre := make([]byte, len(preamble))
		var h hello
		if _, err := io.ReadFull(r, pre); err != nil {
			accepted <- err
			return
		}
		if err := h.read(r); err != nil {
			accepted <- err
			return
		}
		accepted <- writeReply(c, replyAccepted, "")
	}()
	out, err := net.Dial("tcp", addrs[1]) // rank 0's connection to rank 1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	go func() {
		out.Write([]byte(preamble))
		(&hello{job: "job", generation: 1, from: 0, size: 2}).write(out)
	}()
	tr, err := Connect(ctx, svcs[0], Config{JobID: "job", Generation: 1, Rank: 1, Addrs: addrs, MaxFrameBytes: maxFrame})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if kind, _, err := readReply(out); err != nil || kind != replyAccepted {
		t.Fatalf("rank 1 answered %d, %v", kind, err)
	}
	return tr, out
}

// encodeFrame is the wire form of a data frame.
func encodeFrame(number uint64, step uint64, seq uint32, data []byte) []byte {
	f := &allreduce.Frame{Step: step, Seq: seq, Length: uint64(len(data) / 8), Data: [][]byte{data}}
	h, _ := frameHeader(f, number)
	var hdr [headerLen]byte
	h.put(&hdr)
	return append(hdr[:], data...)
}

// TestBadFramesAreErrorsNamingThePeer sends rank 1 a good frame and then a
// bad one of every kind: each must fail the receive with an error that
// says what was wrong and names rank 0, never hand over the data.
func TestBadFramesAreErrorsNamingThePeer(t *testing.T) {
	data := make([]byte, 64)
	for i := range data {
		data[i] = byte(i)
	}
	for _, tt := range []struct {
		name string
		bad  func() []byte
		end  bool // close the connection after the bad bytes
		want error
	}{
		{"corrupted payload", func() []byte {
			b := encodeFrame(1, 1, 1, data)
			b[headerLen+10] ^= 0x10
			return b
		}, false, ErrCorrupt},
		{"corrupted header", func() []byte {
			b := encodeFrame(1, 1, 1, data)
			b[8] ^= 1 // the step
			return b
		}, false, ErrCorrupt},
		{"truncated payload", func() []byte { return encodeFrame(1, 1, 1, data)[:headerLen+20] }, true, ErrTruncated},
		{"truncated header", func() []byte { return encodeFrame(1, 1, 1, data)[:20] }, true, ErrTruncated},
		{"oversized", func() []byte { return encodeFrame(1, 1, 1, make([]byte, 2048)) }, false, ErrOversized},
		{"out of order", func() []byte { return encodeFrame(2, 1, 2, data) }, false, ErrOutOfOrder},
		{"repeated", func() []byte { return encodeFrame(0, 1, 0, data) }, false, ErrOutOfOrder},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, out := fakeLeft(t, 1024)
			if _, err := out.Write(encodeFrame(0, 1, 0, data)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var f allreduce.Frame
			if err := tr.Recv(ctx, &f); err != nil || f.DataLen() != len(data) {
				t.Fatalf("the good frame: %v, %d bytes", err, f.DataLen())
			}
			if _, err := out.Write(tt.bad()); err != nil {
				t.Fatal(err)
			}
			if tt.end {
				out.Close()
			}
			err := tr.Recv(ctx, &f)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "rank 0 (127.0.0.1:") {
				t.Fatalf("got %v; want %v naming rank 0", err, tt.want)
			}
			t.Log(err)
			if err := tr.Recv(ctx, &f); !errors.Is(err, allreduce.ErrBroken) {
				t.Fatalf("the receive after a bad frame: %v, want the transport broken", err)
			}
		})
	}
}

// TestCorruptedFrameFailsTheCollective runs rank 1's side of a collective
// whose frame from rank 0 is corrupted in transit: the all-reduce fails
// naming rank 0 and leaves no wrong sum behind as a success.
func TestCorruptedFrameFailsTheCollective(t *testing.T) {
	tr, out := fakeLeft(t, 0)
	v := []float64{1, 2, 3, 4}
	payload := make([]byte, 16) // rank 0's half of the vector: 2.0, 0
	binary.LittleEndian.PutUint64(payload, 0x4000000000000000)
	h := header{step: 7, length: 4, payload: 16, payloadCRC: checksum([][]byte{payload})}
	var hdr [headerLen]byte
	h.put(&hdr)
	b := append(hdr[:], payload...)
	b[headerLen] ^= 1
	go out.Write(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := allreduce.New(tr, allreduce.DefaultConfig()).AllReduce(ctx, 7, v, allreduce.Sum)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "rank 0") {
		t.Fatalf("all-reduce over a corrupted frame: %v, want a corruption error naming rank 0", err)
	}
}
