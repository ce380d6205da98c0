package ringtcp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
	"unsafe"
)

// Shared memory between neighbours on one host.
//
// When both neighbours allow it (Config.SharedMemory), the connection's
// sender offers a ring buffer in a file of shmDir it created, mapped and
// filled with a random nonce, naming the file and the nonce on the
// (authenticated) connection. A receiver that can open that file, finds
// the nonce in it and maps it is on the same host as the sender: it says
// so, and from then on the frames, the same bytes as on TCP (headers,
// running numbers, checksums), go through the mapping, and the TCP
// connection carries only wake-ups: a doorbell byte forward when the
// receiver waits for data, a replySpace backward when the sender waits
// for room. A receiver on another host (or in another container) cannot
// open the file and declines; the frames stay on TCP. Either way the TCP
// connection stays open: its end is how each side learns that the other
// left or died, and closing it (a deadline, a failure) wakes whoever
// waits.
//
// The file's layout: a 4 KiB header page (magic, capacity, nonce, then the
// write and read positions and the two waiting flags, each on a cache line
// of its own) and capacity bytes of data, a power of two. Positions count
// bytes from the start and only grow; the writer owns the write position,
// the reader the read position, and each checks the other's (a position
// out of range is a corrupted ring, an error naming the neighbour).
const (
	shmMagic      = "RTSHM001"
	shmHeaderLen  = 4096
	shmNonceLen   = 32
	shmOffWrite   = 64
	shmOffRead    = 128
	shmOffRWait   = 192
	shmOffWWait   = 256
	shmFilePrefix = "ringtrain-ring-"

	// DefaultSharedMemoryBytes is the default capacity of a direction's
	// ring.
	DefaultSharedMemoryBytes = 4 << 20
	// maxSharedMemoryBytes bounds the capacity a receiver maps.
	maxSharedMemoryBytes = 256 << 20
	// shmPublish is the most the writer copies before it publishes its
	// position, so that the reader copies out while it copies in.
	shmPublish = 128 << 10
)

// shmDir holds the rings' files: a tmpfs shared by the processes of one
// host (and not by containers, which mount their own).
var shmDir = "/dev/shm"

// The offer a connection's sender makes once its hello is accepted, and
// the forward wake-up.
const (
	offerNone = 0
	offerShm  = 1
	doorbell  = 0xdb
)

// The receiver's answers to an offer, and its backward wake-up.
const (
	replyShm   = 4 // the frames go through the mapping from now on
	replyNoShm = 5 // the text says why not
	replySpace = 6 // the receiver read from a ring its sender waits on
)

// shmRing is one direction's mapped ring buffer.
type shmRing struct {
	mem  []byte // the whole mapping
	data []byte // mem[shmHeaderLen:]
	mask uint64
	path string // the file, until it is removed
	// The shared words.
	wpos, rpos   *atomic.Uint64
	rwait, wwait *atomic.Uint32
}

// newShmRing views mem, a mapping of shmHeaderLen + capacity bytes.
func newShmRing(mem []byte, capacity int, path string) *shmRing {
	return &shmRing{
		mem: mem, data: mem[shmHeaderLen : shmHeaderLen+capacity], mask: uint64(capacity - 1), path: path,
		wpos:  (*atomic.Uint64)(unsafe.Pointer(&mem[shmOffWrite])),
		rpos:  (*atomic.Uint64)(unsafe.Pointer(&mem[shmOffRead])),
		rwait: (*atomic.Uint32)(unsafe.Pointer(&mem[shmOffRWait])),
		wwait: (*atomic.Uint32)(unsafe.Pointer(&mem[shmOffWWait])),
	}
}

// validShmCapacity reports whether c is a capacity a ring may have.
func validShmCapacity(c int) bool {
	return c >= 64<<10 && c <= maxSharedMemoryBytes && c&(c-1) == 0
}

// newNonce returns a random nonce.
func newNonce() (n [shmNonceLen]byte) {
	rand.Read(n[:])
	return n
}

// createShmRing creates, sizes and maps a ring of capacity bytes with
// nonce in its header.
func createShmRing(capacity int, nonce [shmNonceLen]byte) (*shmRing, error) {
	mem, path, err := createShm(shmHeaderLen + capacity)
	if err != nil {
		return nil, err
	}
	copy(mem, shmMagic)
	binary.LittleEndian.PutUint64(mem[8:], uint64(capacity))
	copy(mem[16:], nonce[:])
	return newShmRing(mem, capacity, path), nil
}

// openShmRing maps the ring a sender offered and checks that it holds the
// nonce the sender named; the file is removed once mapped (the sender
// removes it too, once answered), and left alone when it is not the
// sender's.
func openShmRing(name string, capacity int, nonce [shmNonceLen]byte) (*shmRing, error) {
	if !validShmCapacity(capacity) {
		return nil, fmt.Errorf("offered a ring of %d bytes", capacity)
	}
	mem, path, err := openShm(name, shmHeaderLen+capacity)
	if err != nil {
		return nil, err
	}
	r := newShmRing(mem, capacity, "")
	if string(mem[:8]) != shmMagic || binary.LittleEndian.Uint64(mem[8:]) != uint64(capacity) ||
		subtle.ConstantTimeCompare(mem[16:16+shmNonceLen], nonce[:]) != 1 {
		r.unmap()
		return nil, errors.New("the file offered is not the neighbour's ring (another host's file of that name?)")
	}
	removeShm(path)
	return r, nil
}

// unmap removes the ring's file if it is still there and unmaps it.
func (r *shmRing) unmap() {
	if r.mem == nil {
		return
	}
	r.remove()
	unmapShm(r.mem)
	r.mem, r.data = nil, nil
}

// remove removes the ring's file, once both sides have mapped it (or one
// gave up).
func (r *shmRing) remove() {
	if r.path != "" {
		removeShm(r.path)
		r.path = ""
	}
}

// writeOffer writes the sender's offer: its ring, or none.
func writeOffer(w io.Writer, r *shmRing, nonce [shmNonceLen]byte) error {
	if r == nil {
		_, err := w.Write([]byte{offerNone})
		return err
	}
	name := shmName(r.path)
	b := []byte{offerShm}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = append(b, nonce[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(r.data)))
	_, err := w.Write(b)
	return err
}

// offer is a sender's offer as received.
type offer struct {
	name     string
	nonce    [shmNonceLen]byte
	capacity int
}

// readOffer reads a sender's offer; ok is false for none.
func readOffer(r io.Reader) (o offer, ok bool, err error) {
	var k [1]byte
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return o, false, fmt.Errorf("read the shared-memory offer: %w", err)
	}
	switch k[0] {
	case offerNone:
		return o, false, nil
	case offerShm:
	default:
		return o, false, fmt.Errorf("%w: shared-memory offer of kind %d", ErrCorrupt, k[0])
	}
	if o.name, err = readString(r); err != nil {
		return o, false, fmt.Errorf("read the shared-memory offer's name: %w", err)
	}
	var tail [shmNonceLen + 8]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil {
		return o, false, fmt.Errorf("read the shared-memory offer: %w", err)
	}
	copy(o.nonce[:], tail[:])
	c := binary.LittleEndian.Uint64(tail[shmNonceLen:])
	if c > maxSharedMemoryBytes {
		return o, false, fmt.Errorf("%w: shared-memory offer of %d bytes", ErrOversized, c)
	}
	o.capacity = int(c)
	return o, true, nil
}

// shmWriter writes a byte stream into a ring, ringing the doorbell on the
// connection when the reader waits.
type shmWriter struct {
	ring *shmRing
	w    uint64   // the write position
	conn net.Conn // forward: doorbells
	// space receives the reader's replySpace; gone closes when the
	// connection's backward direction ended; failed when the transport
	// broke.
	space        <-chan struct{}
	gone, failed <-chan struct{}
}

// Write copies p into the ring, waiting for room as needed.
func (s *shmWriter) Write(p []byte) (int, error) {
	parts := [1][]byte{p}
	return s.writeParts(parts[:])
}

// writeParts copies the concatenation of parts into the ring (a frame's
// header and payload), publishing what it copied every shmPublish bytes,
// before it waits for room, and at the end.
func (s *shmWriter) writeParts(parts [][]byte) (int, error) {
	r, written := s.ring, 0
	capacity := uint64(len(r.data))
	w := s.w // copied up to here, published up to s.w
	for _, p := range parts {
		for len(p) > 0 {
			used := w - r.rpos.Load()
			if used > capacity {
				return written, fmt.Errorf("%w: the shared-memory ring's read position is %d bytes behind its write position, more than its %d", ErrCorrupt, used, capacity)
			}
			if used == capacity {
				if err := s.publish(w); err != nil {
					return written, err
				}
				if err := s.waitSpace(); err != nil {
					return written, err
				}
				continue
			}
			n := min(uint64(len(p)), capacity-used)
			at := w & r.mask
			c := copy(r.data[at:], p[:n])
			copy(r.data, p[c:n])
			w += n
			p, written = p[n:], written+int(n)
			if w-s.w >= shmPublish {
				if err := s.publish(w); err != nil {
					return written, err
				}
			}
		}
	}
	return written, s.publish(w)
}

// publish makes the bytes copied up to w readable, ringing the doorbell
// when the reader waits.
func (s *shmWriter) publish(w uint64) error {
	if w == s.w {
		return nil
	}
	s.w = w
	s.ring.wpos.Store(w)
	if s.ring.rwait.Swap(0) == 1 {
		_, err := s.conn.Write([]byte{doorbell})
		return err
	}
	return nil
}

// waitSpace waits until the reader has read from a full ring.
func (s *shmWriter) waitSpace() error {
	r := s.ring
	r.wwait.Store(1)
	if s.w-r.rpos.Load() < uint64(len(r.data)) {
		r.wwait.Store(0) // a stray replySpace may follow: harmless
		return nil
	}
	select {
	case <-s.space:
		return nil
	case <-s.gone:
		return io.ErrClosedPipe
	case <-s.failed:
		return net.ErrClosed
	}
}

// shmReader reads the byte stream of a ring, waiting for the doorbell on
// the connection when it is empty.
type shmReader struct {
	ring  *shmRing
	r     uint64        // the read position
	bells *bufio.Reader // forward: doorbells
	conn  net.Conn      // backward: replySpace
}

// Read copies what the ring holds, up to len(p) bytes, into p, waiting
// for at least one byte.
func (s *shmReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := s.ring
	capacity := uint64(len(r.data))
	for {
		avail := r.wpos.Load() - s.r
		if avail > capacity {
			return 0, fmt.Errorf("%w: the shared-memory ring's write position is %d bytes ahead of its read position, more than its %d", ErrCorrupt, avail, capacity)
		}
		if avail == 0 {
			if err := s.waitData(); err != nil {
				return 0, err
			}
			continue
		}
		n := min(uint64(len(p)), avail)
		at := s.r & r.mask
		c := copy(p[:n], r.data[at:])
		copy(p[c:n], r.data)
		s.r += n
		r.rpos.Store(s.r)
		if r.wwait.Swap(0) == 1 {
			if err := writeReply(s.conn, replySpace, ""); err != nil {
				return int(n), err
			}
		}
		return int(n), nil
	}
}

// waitData waits for the writer's doorbell, unless data arrived
// meanwhile. A doorbell meant for an earlier wait only makes the caller
// look again.
func (s *shmReader) waitData() error {
	r := s.ring
	r.rwait.Store(1)
	if r.wpos.Load() != s.r {
		r.rwait.Store(0) // a stray doorbell may follow: harmless
		return nil
	}
	b, err := s.bells.ReadByte()
	if err != nil {
		return err
	}
	if b != doorbell {
		return fmt.Errorf("%w: byte %#x on a shared-memory ring's connection", ErrCorrupt, b)
	}
	return nil
}

// shareMemory offers the right-hand neighbour a ring for this rank's
// frames and answers the left-hand neighbour's offer, on the connections
// just accepted: every rank writes its offer before it reads its left-hand
// neighbour's, so none waits on another's answer before giving its own.
// A direction whose ring is declined (another host, shared memory off on
// either side, no room in shmDir) stays on TCP; only a broken connection
// or a malformed message is an error.
func (t *Transport) shareMemory(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		t.out.SetDeadline(time.Unix(1, 0))
		t.in.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if stop() {
			t.out.SetDeadline(time.Time{})
			t.in.SetDeadline(time.Time{})
		}
	}()
	nonce := newNonce()
	var ring *shmRing
	if t.cfg.SharedMemory {
		// No room or no shmDir: this direction stays on TCP.
		ring, _ = createShmRing(t.cfg.SharedMemoryBytes, nonce)
	}
	if ring != nil {
		defer ring.remove() // mapped by both sides, or declined
	}
	if err := writeOffer(t.out, ring, nonce); err != nil {
		if ring != nil {
			ring.unmap()
		}
		return fmt.Errorf("offer to %v: %w", t.right, err)
	}
	t.sendRing = ring
	o, offered, err := readOffer(t.inR)
	if err != nil {
		return fmt.Errorf("from %v: %w", t.left, err)
	}
	if offered {
		answer, text := byte(replyNoShm), "shared memory is off here"
		if t.cfg.SharedMemory {
			t.recvRing, err = openShmRing(o.name, o.capacity, o.nonce)
			if err == nil {
				answer, text = replyShm, ""
			} else {
				text = err.Error()
			}
		}
		if err := writeReply(t.in, answer, text); err != nil {
			return fmt.Errorf("answer %v: %w", t.left, err)
		}
	}
	if ring == nil {
		return nil
	}
	kind, _, err := readReply(t.out)
	switch {
	case err != nil:
		return fmt.Errorf("%v's answer: %w", t.right, err)
	case kind == replyNoShm:
		ring.unmap()
		t.sendRing = nil
	case kind != replyShm:
		return fmt.Errorf("%w: answer %d from %v to the shared-memory offer", ErrCorrupt, kind, t.right)
	}
	return nil
}

// SharedMemory reports which directions go through shared memory: the
// frames to the right-hand neighbour, and those from the left-hand one.
func (t *Transport) SharedMemory() (toRight, fromLeft bool) {
	return t.sendRing != nil, t.recvRing != nil
}
