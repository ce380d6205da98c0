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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
// The file's layout: a 4 KiB header page (magic, capacity, nonce, the
// creator's rank and ring generation, then the write and read positions
// and the two waiting flags, each on 128 bytes of its own) and capacity
// bytes of data, a power of two. Positions count
// bytes from the start and only grow; the writer owns the write position,
// the reader the read position, and each checks the other's (a position
// out of range is a corrupted ring, an error naming the neighbour).
const (
	shmMagic      = "RTSHM001"
	shmHeaderLen  = 4096
	shmNonceLen   = 32
	shmOffRank    = 48
	shmOffGen     = 52
	shmOffWrite   = 128
	shmOffRead    = 256
	shmOffRWait   = 384
	shmOffWWait   = 512
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

// doorbellByte is the doorbell as written, shared by every writer (a
// connection's Write does not keep it): no allocation per wake-up.
var doorbellByte = []byte{doorbell}

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

// shmOwner is who created a ring: the rank and ring generation written in
// its header, which the receiver checks against its left-hand neighbour.
type shmOwner struct {
	rank       int
	generation uint32
}

// createShmRing creates, sizes and maps a ring of capacity bytes with
// nonce and its owner in its header.
func createShmRing(capacity int, nonce [shmNonceLen]byte, owner shmOwner) (*shmRing, error) {
	mem, path, err := createShm(shmHeaderLen + capacity)
	if err != nil {
		return nil, err
	}
	copy(mem, shmMagic)
	binary.LittleEndian.PutUint64(mem[8:], uint64(capacity))
	copy(mem[16:], nonce[:])
	binary.LittleEndian.PutUint32(mem[shmOffRank:], uint32(owner.rank))
	binary.LittleEndian.PutUint32(mem[shmOffGen:], owner.generation)
	return newShmRing(mem, capacity, path), nil
}

// openShmRing maps the ring a sender offered and checks that it holds the
// nonce the sender named and names owner, the left-hand neighbour, as its
// creator (a ring this rank made itself, offered back, is refused); the
// file is removed once mapped (the sender removes it too, once answered),
// and left alone when it is not the sender's.
func openShmRing(name string, capacity int, nonce [shmNonceLen]byte, owner shmOwner) (*shmRing, error) {
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
	if rank, gen := int(binary.LittleEndian.Uint32(mem[shmOffRank:])), binary.LittleEndian.Uint32(mem[shmOffGen:]); rank != owner.rank || gen != owner.generation {
		r.unmap()
		return nil, fmt.Errorf("the ring offered is rank %d's of ring %d, not the left-hand neighbour's (rank %d of ring %d)", rank, gen, owner.rank, owner.generation)
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
		return o, false, fmt.Errorf("malformed shared-memory offer (kind %d)", k[0])
	}
	if o.name, err = readString(r); err != nil {
		return o, false, fmt.Errorf("read the shared-memory offer's name: %w", err)
	}
	var tail [shmNonceLen + 8]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil {
		return o, false, fmt.Errorf("read the shared-memory offer: %w", err)
	}
	copy(o.nonce[:], tail[:])
	// A capacity out of range is declined, not an error: openShmRing
	// refuses it.
	o.capacity = int(min(binary.LittleEndian.Uint64(tail[shmNonceLen:]), maxSharedMemoryBytes+1))
	return o, true, nil
}

// ringFilePID returns the process id in the name of a ring's file
// (shmFilePrefix, the creator's pid, a dash and digits), and whether name
// is one.
func ringFilePID(name string) (int, bool) {
	pid, random, ok := strings.Cut(strings.TrimPrefix(name, shmFilePrefix), "-")
	digits := func(s string) bool { return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == "" }
	if !ok || !strings.HasPrefix(name, shmFilePrefix) || !digits(pid) || !digits(random) {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	return n, err == nil
}

// shmWriter writes a byte stream into a ring, ringing the doorbell on the
// connection when the reader waits.
type shmWriter struct {
	ring  *shmRing
	w     uint64   // the write position
	lastR uint64   // the read position last seen
	conn  net.Conn // forward: doorbells
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
			rp := r.rpos.Load()
			used := w - rp
			if used > capacity || rp < s.lastR {
				return written, fmt.Errorf("%w: the shared-memory ring's read position %d is out of range (last %d, write position %d, capacity %d)", ErrCorrupt, rp, s.lastR, w, capacity)
			}
			s.lastR = rp
			// Wait for room for a quarter of the ring (or the rest of
			// the part), rather than wake for every few bytes read.
			if capacity-used < min(uint64(len(p)), capacity/4) {
				if err := s.publish(w); err != nil {
					return written, err
				}
				if err := s.waitSpace(w, min(uint64(len(p)), capacity/4)); err != nil {
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
		_, err := s.conn.Write(doorbellByte)
		return err
	}
	return nil
}

// waitSpace waits until the reader has read enough of the ring, written
// up to w, for need bytes to fit, or for any of it to be read: the caller
// looks again.
func (s *shmWriter) waitSpace(w, need uint64) error {
	r := s.ring
	room := func() bool { return uint64(len(r.data))-(w-r.rpos.Load()) >= need }
	r.wwait.Store(1)
	if room() {
		r.wwait.Store(0) // a stray replySpace may follow: harmless
		return nil
	}
	select {
	case <-s.space:
		return nil
	case <-s.gone:
		if room() { // the last replySpace came with the end
			return nil
		}
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
		// Copy what is there in pieces, giving each back to the
		// writer as it is copied.
		n := min(uint64(len(p)), avail)
		for done := uint64(0); done < n; {
			k := min(n-done, shmPublish)
			at := s.r & r.mask
			c := copy(p[done:done+k], r.data[at:])
			copy(p[done+uint64(c):done+k], r.data)
			s.r += k
			done += k
			r.rpos.Store(s.r)
			if r.wwait.Swap(0) == 1 {
				if err := writeReply(s.conn, replySpace, ""); err != nil {
					return int(done), err
				}
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
func (t *Transport) shareMemory(ctx context.Context) (err error) {
	stop := context.AfterFunc(ctx, func() {
		t.out.SetDeadline(time.Unix(1, 0))
		t.in.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if stop() {
			t.out.SetDeadline(time.Time{})
			t.in.SetDeadline(time.Time{})
		} else if err == nil {
			err = ctx.Err() // the connections' deadlines have passed
		}
	}()
	nonce := newNonce()
	var ring *shmRing
	if t.cfg.SharedMemory {
		// No room or no shmDir: this direction stays on TCP.
		var err error
		if ring, err = createShmRing(t.cfg.SharedMemoryBytes, nonce, shmOwner{t.cfg.Rank, t.cfg.Generation}); err != nil {
			t.whyNoShm[0] = "no ring offered: " + err.Error()
		}
	} else {
		t.whyNoShm[0] = "shared memory is off here"
	}
	if ring != nil {
		defer ring.remove() // mapped by both sides, or declined
	}
	// A neighbour that closed its connection meanwhile is gone; a context
	// that ended is the error, whatever the read it cut short said.
	failed := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("%w (%v)", ErrNeighbourGone, err)
		}
		return err
	}
	if err := writeOffer(t.out, ring, nonce); err != nil {
		if ring != nil {
			ring.unmap()
		}
		return fmt.Errorf("offer to %v: %w", t.right, failed(err))
	}
	t.sendRing = ring
	o, offered, err := readOffer(t.inR)
	if err != nil {
		return fmt.Errorf("from %v: %w", t.left, failed(err))
	}
	if !offered {
		t.whyNoShm[1] = fmt.Sprintf("%v offered no ring", t.left)
	} else {
		// The reason stays here: the neighbour learns only that it
		// was declined.
		answer, text := byte(replyNoShm), "shared memory is off here"
		if t.cfg.SharedMemory {
			if ring != nil && o.name == shmName(ring.path) {
				err = errors.New("the ring offered is this rank's own")
			} else {
				t.recvRing, err = openShmRing(o.name, o.capacity, o.nonce, shmOwner{t.left.Rank, t.cfg.Generation})
			}
			if err == nil {
				answer, text = replyShm, ""
			} else {
				text = "the ring offered could not be mapped here (another host?)"
				t.whyNoShm[1] = fmt.Sprintf("the ring %v offered: %v", t.left, err)
			}
		} else {
			t.whyNoShm[1] = text
		}
		if err := writeReply(t.in, answer, text); err != nil {
			return fmt.Errorf("answer %v: %w", t.left, failed(err))
		}
	}
	if ring != nil {
		kind, text, err := readReply(t.out)
		switch {
		case err != nil:
			return fmt.Errorf("%v's answer: %w", t.right, failed(err))
		case kind == replyNoShm:
			ring.unmap()
			t.sendRing = nil
			t.whyNoShm[0] = fmt.Sprintf("%v declined: %s", t.right, text)
		case kind != replyShm:
			return fmt.Errorf("answer %d from %v to the shared-memory offer: want %d or %d", kind, t.right, replyShm, replyNoShm)
		}
	}
	return nil
}

// SharedMemory reports which directions go through shared memory: the
// frames to the right-hand neighbour, and those from the left-hand one.
func (t *Transport) SharedMemory() (toRight, fromLeft bool) {
	return t.sendRing != nil, t.recvRing != nil
}

// WhyNotSharedMemory says why a direction stays on TCP (empty for one
// that does not): no ring could be made or offered, or the neighbour
// declined it; no ring was offered, or the one offered could not be
// mapped (a neighbour on another host or in another container).
func (t *Transport) WhyNotSharedMemory() (toRight, fromLeft string) {
	return t.whyNoShm[0], t.whyNoShm[1]
}
