package ringtcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"ringtrain/internal/allreduce"
)

// Config describes one rank's place in a ring.
type Config struct {
	JobID      string
	Generation uint32
	Rank       int
	// Addrs are the members' ring addresses (where their Services
	// listen), by rank.
	Addrs []string
	// TLS, when not nil, is the job's mutual TLS configuration: the
	// connection to the right-hand neighbour is then TLS 1.3 with this
	// rank's certificate, and the neighbour's is verified.
	TLS *tls.Config
	// Token is presented to the right-hand neighbour's Service.
	Token string
	// MaxFrameBytes bounds a received frame's payload; a larger one fails
	// the transport before anything is allocated for it. Default 64 MiB.
	MaxFrameBytes int
	// Dial, when not nil, opens the TCP connection to the right-hand
	// neighbour instead of a net.Dialer (a simulated network dials from
	// inside a namespace).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// SocketBuffer, when positive, sets the kernel's send and receive
	// buffers of the connections; zero leaves them to the kernel's
	// autotuning.
	SocketBuffer int
	// SharedMemory lets the frames to and from a neighbour on this host
	// go through a ring buffer in shared memory instead of the kernel's
	// TCP path, when the neighbour allows it too (see shm.go); the TCP
	// connection stays, carrying wake-ups and telling each side of the
	// other's end. A neighbour on another host, or in another container
	// (which mounts its own /dev/shm), stays on TCP. The frames are the
	// same, checksums and running numbers included; with TLS they are
	// not encrypted in the mapping, which only this user on this host can
	// read.
	SharedMemory bool
	// SharedMemoryBytes is the capacity of the ring this rank offers its
	// right-hand neighbour: a power of two from 64 KiB to 256 MiB
	// (default DefaultSharedMemoryBytes).
	SharedMemoryBytes int
}

// DefaultMaxFrameBytes is the default bound on a frame's payload.
const DefaultMaxFrameBytes = 64 << 20

// Transport is an allreduce.Transport over two TCP connections: frames go
// to the right-hand neighbour on the connection this rank dialled and come
// from the left-hand neighbour on the connection it accepted, or, with a
// neighbour on this host, through the shared-memory ring beside that
// connection (Config.SharedMemory).
type Transport struct {
	cfg         Config
	left, right allreduce.Peer

	out     net.Conn // to the right-hand neighbour
	in      net.Conn // from the left-hand neighbour
	inR     *bufio.Reader
	replies sync.WaitGroup // the reader of out's replies
	goodbye chan string    // what the right-hand neighbour said when it left
	// repliesEnded closes when the reader of out's replies stops; space
	// receives the right-hand neighbour's replySpace.
	repliesEnded chan struct{}
	space        chan struct{}

	// w is where the frames to the right-hand neighbour go, recvR where
	// the left-hand neighbour's come from: the connections, or the
	// shared-memory rings sendRing and recvRing. recvMu keeps recvRing
	// mapped while a receive reads it.
	w                  io.Writer
	recvR              io.Reader
	sendRing, recvRing *shmRing
	recvMu             sync.Mutex
	// whyNoShm says why the frames to the right-hand neighbour, and
	// those from the left-hand one, stay on TCP.
	whyNoShm [2]string

	sent, received uint64
	hdr, rhdr      [headerLen]byte
	bufs           net.Buffers
	recvBuf        []byte

	// The writer goroutine writes the frames Send queues: small ones
	// copied, so that Send returns at once (a loopback write does the
	// receiver's work too), large ones from the caller's memory while
	// Send waits.
	queue   chan outFrame
	spare   chan []byte // copies of small frames, for reuse
	wrote   chan error  // the result of a large frame
	writing sync.WaitGroup
	// closing asks the writer to write what is queued and stop; drained
	// closes when it has.
	closeOnce        sync.Once
	closing, drained chan struct{}

	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// connectRetries bounds the retries of a refused connection to the
// right-hand neighbour, as in package ringrpc.
var connectRetries = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// Connect joins the ring cfg describes: it dials the right-hand neighbour
// and waits, until ctx ends or that dial fails, for the left-hand
// neighbour's connection to reach svc. Every rank of the ring calls Connect at about the same time.
func Connect(ctx context.Context, svc *Service, cfg Config) (*Transport, error) {
	n := len(cfg.Addrs)
	if cfg.Rank < 0 || cfg.Rank >= n {
		return nil, fmt.Errorf("ringtcp: rank %d outside a ring of %d", cfg.Rank, n)
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.SharedMemoryBytes == 0 {
		cfg.SharedMemoryBytes = DefaultSharedMemoryBytes
	}
	if cfg.SharedMemory && !validShmCapacity(cfg.SharedMemoryBytes) {
		return nil, fmt.Errorf("ringtcp: shared-memory ring of %d bytes: want a power of two from 64 KiB to 256 MiB", cfg.SharedMemoryBytes)
	}
	l, r := (cfg.Rank+n-1)%n, (cfg.Rank+1)%n
	t := &Transport{
		cfg:     cfg,
		left:    allreduce.Peer{Rank: l, Addr: cfg.Addrs[l]},
		right:   allreduce.Peer{Rank: r, Addr: cfg.Addrs[r]},
		failed:  make(chan struct{}),
		goodbye: make(chan string, 1),
	}
	if n == 1 {
		return t, nil
	}
	// A dial that fails (refused, wrong credentials) means the ring
	// cannot form: stop waiting for the left-hand neighbour then rather
	// than at ctx's end.
	claimCtx, cancelClaim := context.WithCancel(ctx)
	defer cancelClaim()
	var dialErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.out, dialErr = t.dial(ctx)
		if dialErr != nil {
			cancelClaim()
		}
	}()
	in, claimErr := svc.claim(claimCtx, slotKey{cfg.JobID, cfg.Generation}, l, n)
	if claimErr == nil {
		// Answered before this rank's own dial is: the left-hand
		// neighbour's dial may be what the ring waits for.
		t.in, t.inR = in.conn, in.r
		tune(t.in, cfg.SocketBuffer)
		claimErr = writeReply(in.conn, replyAccepted, "")
	}
	wg.Wait()
	if dialErr != nil || claimErr != nil {
		t.closeConns()
		if dialErr != nil {
			return nil, fmt.Errorf("ringtcp: connect to %v: %w", t.right, dialErr)
		}
		return nil, fmt.Errorf("ringtcp: wait for the connection of %v: %w", t.left, claimErr)
	}
	t.w, t.recvR = t.out, t.inR
	if err := t.shareMemory(ctx); err != nil {
		t.closeConns()
		t.unmapRings()
		return nil, fmt.Errorf("ringtcp: shared memory with %v and %v: %w", t.left, t.right, err)
	}
	t.space, t.repliesEnded = make(chan struct{}, 1), make(chan struct{})
	if t.sendRing != nil {
		t.w = &shmWriter{ring: t.sendRing, conn: t.out, space: t.space, gone: t.repliesEnded, failed: t.failed}
	}
	if t.recvRing != nil {
		t.recvR = &shmReader{ring: t.recvRing, bells: t.inR, conn: t.in}
	}
	t.replies.Add(1)
	go t.readReplies(bufio.NewReaderSize(t.out, 256))
	t.queue, t.spare, t.wrote = make(chan outFrame, queuedFrames), make(chan []byte, queuedFrames+1), make(chan error, 1)
	t.closing, t.drained = make(chan struct{}), make(chan struct{})
	t.writing.Add(1)
	go t.writeLoop()
	return t, nil
}

// smallFrame is the largest frame Send copies and queues; queuedFrames
// bounds the queue.
const (
	smallFrame   = 64 << 10
	queuedFrames = 16
)

// outFrame is a frame queued for the writer: a copy, or the caller's
// buffers.
type outFrame struct {
	copy []byte
	bufs net.Buffers
}

// writeLoop writes queued frames until the transport breaks. A failed
// write breaks it; a large frame's result goes back to its Send.
func (t *Transport) writeLoop() {
	defer t.writing.Done()
	for {
		var of outFrame
		select {
		case of = <-t.queue:
		case <-t.failed:
			return
		case <-t.closing:
			select {
			case of = <-t.queue:
			default:
				close(t.drained)
				return
			}
		}
		var err error
		if of.copy != nil {
			_, err = t.w.Write(of.copy)
			select {
			case t.spare <- of.copy[:0]:
			default: // enough spares already
			}
		} else {
			if sw, ok := t.w.(*shmWriter); ok {
				_, err = sw.writeParts(of.bufs)
			} else {
				_, err = of.bufs.WriteTo(t.w)
			}
			t.wrote <- err
		}
		if err != nil {
			if of.copy != nil {
				t.fail(t.sendError(err))
			}
			return
		}
	}
}

// sendError is the error of a failed write: the right-hand neighbour's
// goodbye, when it said one, names the cause.
func (t *Transport) sendError(err error) error {
	select {
	case reason := <-t.goodbye:
		err = fmt.Errorf("%w: %s (%v)", ErrNeighbourGone, reason, err)
	case <-time.After(time.Second):
	}
	return fmt.Errorf("ringtcp: to %v: %w", t.right, err)
}

// dial connects to the right-hand neighbour, says hello and waits for its
// answer.
func (t *Transport) dial(ctx context.Context) (net.Conn, error) {
	dial := t.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	var conn net.Conn
	var err error
	for attempt := 0; ; attempt++ {
		conn, err = dial(ctx, t.right.Addr)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || attempt == len(connectRetries) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(connectRetries[attempt]):
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (net.Conn, error) {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, err
	}
	tune(conn, t.cfg.SocketBuffer)
	if _, err := conn.Write([]byte(preamble)); err != nil {
		return fail(err)
	}
	if t.cfg.TLS != nil {
		tc := tls.Client(conn, t.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS handshake: %w", err))
		}
		conn = tc
	}
	h := hello{job: t.cfg.JobID, generation: t.cfg.Generation, from: int32(t.cfg.Rank), size: int32(len(t.cfg.Addrs)), token: t.cfg.Token}
	if err := h.write(conn); err != nil {
		return fail(err)
	}
	kind, text, err := readReply(conn)
	switch {
	case err != nil:
		return fail(fmt.Errorf("no answer to the hello: %w", err))
	case kind == replyRefused:
		return fail(fmt.Errorf("refused: %s", text))
	case kind != replyAccepted:
		return fail(fmt.Errorf("unexpected answer %d to the hello", kind))
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// tune turns Nagle's algorithm off and sets a TCP connection's buffers
// when buffer is positive.
func tune(c net.Conn, buffer int) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		if buffer > 0 {
			tc.SetReadBuffer(buffer)
			tc.SetWriteBuffer(buffer)
		}
	}
}

// readReplies waits for the right-hand neighbour's goodbye, or the end of
// the connection, and keeps the reason for the sends that fail; it passes
// the neighbour's replySpace on to a writer waiting for room in the
// shared-memory ring.
func (t *Transport) readReplies(r *bufio.Reader) {
	defer t.replies.Done()
	defer close(t.repliesEnded)
	reason := "connection ended"
	for {
		kind, text, err := readReply(r)
		if err != nil {
			break
		}
		if kind == replyGoodbye {
			reason = text
			break
		}
		if kind == replySpace {
			select {
			case t.space <- struct{}{}:
			default: // one wake-up is pending already
			}
		}
	}
	t.goodbye <- reason
}

func (t *Transport) Rank() int             { return t.cfg.Rank }
func (t *Transport) Size() int             { return len(t.cfg.Addrs) }
func (t *Transport) Left() allreduce.Peer  { return t.left }
func (t *Transport) Right() allreduce.Peer { return t.right }

// fail breaks the transport with err, once, tells the left-hand neighbour
// why and closes both connections; it reports whether this call broke it.
func (t *Transport) fail(err error) (first bool) {
	t.failOnce.Do(func() {
		first = true
		t.failErr = err
		close(t.failed)
		if t.in != nil {
			t.in.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			writeReply(t.in, replyGoodbye, fmt.Sprintf("rank %d left the ring: %v", t.cfg.Rank, err))
		}
		t.closeConns()
	})
	return first
}

func (t *Transport) closeConns() {
	if t.out != nil {
		t.out.Close()
	}
	if t.in != nil {
		t.in.Close()
	}
}

// broken returns the error that broke the transport, or nil.
func (t *Transport) broken() error {
	select {
	case <-t.failed:
		return fmt.Errorf("%w: %w", allreduce.ErrBroken, t.failErr)
	default:
		return nil
	}
}

// failCall breaks the transport with a call's error and returns the error
// the call reports: err, or, when the call failed only because the other
// direction had broken the transport meanwhile, the broken transport's.
// A call that fails once its deadline has passed reports the deadline,
// even before ctx says so: neighbours sharing the deadline give up at the
// same moment, and the one whose context ends first may close its
// connection before the other's context has ended.
func (t *Transport) failCall(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		err = cerr
	}
	if t.fail(err) || cerr != nil {
		return err
	}
	return t.broken()
}

// watch breaks the transport if ctx ends during a call.
func (t *Transport) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { t.fail(context.Cause(ctx)) })
}

// Send implements allreduce.Transport: the header and f.Data go out in
// one writev, without being copied (into the shared-memory ring, with
// one copy).
func (t *Transport) Send(ctx context.Context, f *allreduce.Frame) error {
	if err := t.broken(); err != nil {
		return err
	}
	if t.out == nil {
		return errors.New("ringtcp: a ring of one has no neighbour")
	}
	defer t.watch(ctx)()
	h, payload := frameHeader(f, t.sent)
	h.put(&t.hdr)
	var of outFrame
	if n := headerLen + int(h.payload); n <= smallFrame {
		select {
		case of.copy = <-t.spare:
		default:
			of.copy = make([]byte, 0, smallFrame)
		}
		of.copy = append(of.copy, t.hdr[:]...)
		for _, p := range payload {
			of.copy = append(of.copy, p...)
		}
	} else {
		t.bufs = append(append(t.bufs[:0], t.hdr[:]), payload...)
		of.bufs = t.bufs
	}
	select {
	case t.queue <- of:
	case <-t.failed:
		clear(t.bufs)
		return t.broken()
	}
	t.sent++
	if of.copy != nil {
		return nil
	}
	var err error
	select {
	case err = <-t.wrote:
	case <-t.failed:
		// The writer may still hold the caller's memory: it ends once the
		// connection is closed, which failing did.
		t.writing.Wait()
		err = t.broken()
	}
	clear(t.bufs) // keep no reference to the caller's memory
	if err == nil {
		return nil
	}
	if errors.Is(err, allreduce.ErrBroken) {
		return err
	}
	if ctx.Err() != nil {
		return t.failCall(ctx, err)
	}
	return t.failCall(ctx, t.sendError(err))
}

// Recv implements allreduce.Transport. f.Data is a buffer of the
// transport's, valid until the next Recv.
func (t *Transport) Recv(ctx context.Context, f *allreduce.Frame) error {
	return t.RecvInto(ctx, f, nil)
}

// RecvInto implements allreduce.RecvIntoer: a frame of data of len(dst)
// bytes is read straight into dst, and checked there.
func (t *Transport) RecvInto(ctx context.Context, f *allreduce.Frame, dst []byte) error {
	if t.recvRing != nil {
		t.recvMu.Lock()
		defer t.recvMu.Unlock()
	}
	if err := t.broken(); err != nil {
		return err
	}
	if t.in == nil {
		return errors.New("ringtcp: a ring of one has no neighbour")
	}
	defer t.watch(ctx)()
	if err := readFrame(t.recvR, &t.rhdr, &t.recvBuf, dst, t.received, t.cfg.MaxFrameBytes, f); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			err = ErrNeighbourGone
		}
		return t.failCall(ctx, fmt.Errorf("ringtcp: frame from %v: %w", t.left, err))
	}
	t.received++
	return nil
}

// drainTimeout bounds how long Close waits for queued frames to be
// written.
const drainTimeout = time.Second

// Close writes the frames still queued (for at most drainTimeout) and
// closes both connections; the neighbours' calls fail. Frames this rank
// sent that its neighbour has not yet read may be lost, so a worker closes
// its ring only once every rank has finished its collectives or the ring
// has failed.
func (t *Transport) Close() error {
	if t.closing != nil {
		t.closeOnce.Do(func() { close(t.closing) })
		timer := time.NewTimer(drainTimeout)
		select {
		case <-t.drained:
		case <-t.failed:
		case <-timer.C:
		}
		timer.Stop()
	}
	t.failOnce.Do(func() {
		t.failErr = errors.New("closed")
		close(t.failed)
		t.closeConns()
	})
	t.replies.Wait()
	t.writing.Wait()
	t.recvMu.Lock()
	t.unmapRings()
	t.recvMu.Unlock()
	return nil
}

// unmapRings unmaps the shared-memory rings; nothing may use them any
// more.
func (t *Transport) unmapRings() {
	if t.sendRing != nil {
		t.sendRing.unmap()
	}
	if t.recvRing != nil {
		t.recvRing.unmap()
	}
}
