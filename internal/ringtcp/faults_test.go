package ringtcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// fakeLeft joins rank 1 of a ring of two whose rank 0 is the test: it
// returns rank 1's transport and what rank 0 writes frames on: the raw
// connection, or with shm its shared-memory ring (closing it closes the
// connection).
func fakeLeft(t *testing.T, maxFrame int, shm bool) (*Transport, io.WriteCloser) {
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
	go func() { // answer rank 1's hello, and decline its ring
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
		if err := writeReply(c, replyAccepted, ""); err != nil {
			accepted <- err
			return
		}
		_, offered, err := readOffer(r)
		if err == nil && offered {
			err = writeReply(c, replyNoShm, "the test's rank 0 declines")
		}
		accepted <- err
	}()
	var ring *shmRing
	nonce := newNonce()
	if shm {
		needShm(t)
		if ring, err = createShmRing(64<<10, nonce, shmOwner{0, 1}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ring.unmap)
	}
	out, err := net.Dial("tcp", addrs[1]) // rank 0's connection to rank 1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	go func() {
		out.Write([]byte(preamble))
		(&hello{job: "job", generation: 1, from: 0, size: 2}).write(out)
		writeOffer(out, ring, nonce)
	}()
	tr, err := Connect(ctx, svcs[0], Config{JobID: "job", Generation: 1, Rank: 1, Addrs: addrs, MaxFrameBytes: maxFrame, SharedMemory: shm})
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
	if !shm {
		return tr, out
	}
	if kind, text, err := readReply(out); err != nil || kind != replyShm {
		t.Fatalf("rank 1 answered the offer %d %q, %v", kind, text, err)
	}
	if to, from := tr.SharedMemory(); to || !from {
		t.Fatalf("rank 1: shared memory to the right %v, from the left %v; want only from the left", to, from)
	}
	never := make(chan struct{})
	return tr, &ringConn{shmWriter: &shmWriter{ring: ring, conn: out, space: never, gone: never, failed: never}, conn: out}
}

// ringConn writes into a shared-memory ring; closing it closes the
// connection beside it.
type ringConn struct {
	*shmWriter
	conn net.Conn
}

func (c *ringConn) Close() error { return c.conn.Close() }

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
		// Recv, and RecvInto into memory of the frames' size, over TCP
		// and through shared memory.
		for _, c := range []struct{ into, shm bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			into := c.into
			t.Run(fmt.Sprintf("%s/into=%v/shm=%v", tt.name, into, c.shm), func(t *testing.T) {
				tr, out := fakeLeft(t, 1024, c.shm)
				if _, err := out.Write(encodeFrame(0, 1, 0, data)); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				recv := func(f *allreduce.Frame) error {
					if into {
						return tr.RecvInto(ctx, f, make([]byte, len(data)))
					}
					return tr.Recv(ctx, f)
				}
				var f allreduce.Frame
				if err := recv(&f); err != nil || f.DataLen() != len(data) {
					t.Fatalf("the good frame: %v, %d bytes", err, f.DataLen())
				}
				if _, err := out.Write(tt.bad()); err != nil {
					t.Fatal(err)
				}
				if tt.end {
					out.Close()
				}
				err := recv(&f)
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "rank 0 (127.0.0.1:") {
					t.Fatalf("got %v; want %v naming rank 0", err, tt.want)
				}
				t.Log(err)
				if err := recv(&f); !errors.Is(err, allreduce.ErrBroken) {
					t.Fatalf("the receive after a bad frame: %v, want the transport broken", err)
				}
			})
		}
	}
}

// TestRecvIntoReadsOnlyDataOfItsSize sends a frame of data of dst's size,
// one of another size and an abort: only the first is read into dst, and
// each arrives whole.
func TestRecvIntoReadsOnlyDataOfItsSize(t *testing.T) {
	forShm(t, func(t *testing.T, shm bool) {
		tr, out := fakeLeft(t, 0, shm)
		data := make([]byte, 64)
		for i := range data {
			data[i] = byte(i + 1)
		}
		abort := &allreduce.Frame{Step: 1, Seq: 2, Abort: strings.Repeat("x", len(data)), Origin: 0}
		h, payload := frameHeader(abort, 2)
		var hdr [headerLen]byte
		h.put(&hdr)
		writeBehind(t, out, encodeFrame(0, 1, 0, data), encodeFrame(1, 1, 1, data[:32]), append(hdr[:], payload[0]...))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dst := make([]byte, len(data))
		var f allreduce.Frame
		if err := tr.RecvInto(ctx, &f, dst); err != nil {
			t.Fatal(err)
		}
		if len(f.Data) != 1 || &f.Data[0][0] != &dst[0] || !bytes.Equal(dst, data) {
			t.Fatalf("a frame of dst's size: data %v, dst %v; want it read into dst", f.Data, dst)
		}
		clear(dst)
		if err := tr.RecvInto(ctx, &f, dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data[0], data[:32]) || &f.Data[0][0] == &dst[0] || !bytes.Equal(dst, make([]byte, len(dst))) {
			t.Fatalf("a shorter frame: data %v, dst %v; want it beside dst, dst untouched", f.Data, dst)
		}
		if err := tr.RecvInto(ctx, &f, dst); err != nil {
			t.Fatal(err)
		}
		if f.Abort != abort.Abort || f.Data != nil || !bytes.Equal(dst, make([]byte, len(dst))) {
			t.Fatalf("an abort of dst's size: %+v, dst %v; want the abort, dst untouched", f, dst)
		}
	})
}

// TestCorruptedFrameFailsTheCollective runs rank 1's side of a collective
// whose frame from rank 0 is corrupted in transit: the all-reduce fails
// naming rank 0 and leaves no wrong sum behind as a success.
func TestCorruptedFrameFailsTheCollective(t *testing.T) {
	forShm(t, func(t *testing.T, shm bool) {
		tr, out := fakeLeft(t, 0, shm)
		v := []float64{1, 2, 3, 4}
		payload := make([]byte, 16) // rank 0's half of the vector: 2.0, 0
		binary.LittleEndian.PutUint64(payload, 0x4000000000000000)
		h := header{step: 7, length: 4, payload: 16, payloadCRC: checksum([][]byte{payload})}
		var hdr [headerLen]byte
		h.put(&hdr)
		b := append(hdr[:], payload...)
		b[headerLen] ^= 1
		writeBehind(t, out, b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := allreduce.New(tr, allreduce.DefaultConfig()).AllReduce(ctx, 7, v, allreduce.Sum)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "rank 0") {
			t.Fatalf("all-reduce over a corrupted frame: %v, want a corruption error naming rank 0", err)
		}
	})
}

// TestCorruptedAllGatherFrameFailsTheCollective corrupts the frame of
// rank 1's all-gather round, which is read straight into the vector: the
// all-reduce fails naming rank 0.
func TestCorruptedAllGatherFrameFailsTheCollective(t *testing.T) {
	forShm(t, func(t *testing.T, shm bool) {
		tr, out := fakeLeft(t, 0, shm)
		v := []float64{1, 2, 3, 4}
		var b []byte
		for number := range uint64(2) { // rank 0's chunk 0, then its sum of chunk 1
			payload := make([]byte, 16)
			binary.LittleEndian.PutUint64(payload, 0x4000000000000000)
			h := header{number: number, step: 7, seq: uint32(number), length: 4, payload: 16, payloadCRC: checksum([][]byte{payload})}
			var hdr [headerLen]byte
			h.put(&hdr)
			b = append(append(b, hdr[:]...), payload...)
		}
		b[len(b)-3] ^= 1
		writeBehind(t, out, b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := allreduce.New(tr, allreduce.DefaultConfig()).AllReduce(ctx, 7, v, allreduce.Sum)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "rank 0") || !strings.Contains(err.Error(), "all-gather") {
			t.Fatalf("all-reduce over a corrupted all-gather frame: %v, want a corruption error in the all-gather naming rank 0", err)
		}
	})
}

// forShm runs test over TCP and through shared memory.
func forShm(t *testing.T, test func(t *testing.T, shm bool)) {
	for _, shm := range []bool{false, true} {
		t.Run(fmt.Sprintf("shm=%v", shm), func(t *testing.T) { test(t, shm) })
	}
}

// writeBehind writes bs to w on a goroutine, as a left-hand neighbour
// sends while the test receives; the test's cleanup waits for it (before
// fakeLeft's unmaps the ring).
func writeBehind(t *testing.T, w io.Writer, bs ...[]byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range bs {
			w.Write(b)
		}
	}()
	t.Cleanup(func() { <-done })
}
