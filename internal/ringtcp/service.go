package ringtcp

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ServiceConfig configures the accepting side of a worker's ring
// connections.
type ServiceConfig struct {
	// TLS, when not nil, is the job's mutual TLS configuration (a server
	// certificate, and client certificates required and verified): every
	// ring connection must then complete a TLS 1.3 handshake with it.
	TLS *tls.Config
	// Token, when set, must be the one a connecting rank presents.
	Token string
	// ClaimTimeout bounds how long an accepted connection waits for the
	// local transport of its ring. Default one minute.
	ClaimTimeout time.Duration
	// HandshakeTimeout bounds a new connection's preamble, TLS handshake
	// and hello. Default ten seconds.
	HandshakeTimeout time.Duration
}

func (c *ServiceConfig) ensureDefaults() {
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = time.Minute
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
}

// Service accepts the ring connections of left-hand neighbours and hands
// each to the local transport of the same job and ring generation. It is
// safe for concurrent use.
type Service struct {
	cfg   ServiceConfig
	lis   net.Listener
	other *otherListener

	closeOnce sync.Once
	closed    chan struct{}
	ctx       context.Context // ends when the Service closes
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu struct {
		sync.Mutex
		slots map[slotKey]chan *inbound
	}
}

type slotKey struct {
	job        string
	generation uint32
}

// inbound is an accepted ring connection waiting for its transport.
type inbound struct {
	conn    net.Conn
	r       *bufio.Reader
	from    int32
	size    int32
	claimed chan struct{} // closed by the transport that takes it
}

// Listen serves ring connections on lis and returns the Service and a
// listener of every other connection (give it to the gRPC server). A
// connection is the ring's when it opens with the ring's preamble. Closing
// either the Service or the returned listener closes lis.
func Listen(lis net.Listener, cfg ServiceConfig) (*Service, net.Listener) {
	cfg.ensureDefaults()
	s := &Service{cfg: cfg, lis: lis, closed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.other = &otherListener{s: s, conns: make(chan net.Conn)}
	s.mu.slots = make(map[slotKey]chan *inbound)
	s.wg.Add(1)
	go s.accept()
	return s, s.other
}

// Addr is the address the Service listens on.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Close stops accepting, closes the connections not yet claimed and waits
// for the Service's goroutines.
func (s *Service) Close() error {
	err := s.shut()
	s.wg.Wait()
	return err
}

func (s *Service) shut() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		err = s.lis.Close()
	})
	return err
}

func (s *Service) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.lis.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.shut()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sort(conn)
		}()
	}
}

// sort reads the opening bytes of conn and passes it on: to the ring's
// handshake, or to the other listener with those bytes put back.
func (s *Service) sort(conn net.Conn) {
	// A connection still being sorted or shaking hands when the Service
	// closes is cut short.
	stop := context.AfterFunc(s.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	head := make([]byte, len(preamble))
	n, err := io.ReadFull(conn, head)
	if err == nil && string(head) == preamble {
		s.handshake(conn)
		return
	}
	if err == nil && string(head) == oldPreamble {
		writeReply(conn, replyRefused, "ringtcp: this worker speaks ring protocol 2, the connecting one protocol 1: run one ringtrain version on every worker of a job")
		conn.Close()
		return
	}
	if n == 0 && err != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	select {
	case s.other.conns <- &prefixConn{Conn: conn, prefix: head[:n]}:
	case <-s.closed:
		conn.Close()
	}
}

// handshake completes a ring connection's TLS handshake and hello and
// waits for its transport to claim it.
func (s *Service) handshake(conn net.Conn) {
	refuse := func(format string, args ...any) {
		writeReply(conn, replyRefused, fmt.Sprintf(format, args...))
		conn.Close()
	}
	if s.cfg.TLS != nil {
		tc := tls.Server(conn, s.cfg.TLS)
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			return
		}
		conn = tc
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	var h hello
	if err := h.read(r); err != nil {
		refuse("ringtcp: %v", err)
		return
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(h.token), []byte(s.cfg.Token)) != 1 {
		refuse("ringtrain: missing or wrong token (set -token or RINGTRAIN_TOKEN to the job's)")
		return
	}
	if h.job == "" {
		refuse("ringtcp: a hello must name the job")
		return
	}
	conn.SetReadDeadline(time.Time{})
	in := &inbound{conn: conn, r: r, from: h.from, size: h.size, claimed: make(chan struct{})}
	key := slotKey{h.job, h.generation}
	select {
	case s.slot(key) <- in:
	default:
		refuse("ringtcp: job %s ring %d already has a left-hand neighbour", h.job, h.generation)
		return
	}
	timer := time.NewTimer(s.cfg.ClaimTimeout)
	defer timer.Stop()
	select {
	case <-in.claimed:
		return
	case <-timer.C:
	case <-s.closed:
	}
	if s.takeBack(key, in) {
		refuse("ringtcp: no ring %d of job %s here", h.generation, h.job)
	}
}

func (s *Service) slot(key slotKey) chan *inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.mu.slots[key]
	if !ok {
		sl = make(chan *inbound, 1)
		s.mu.slots[key] = sl
	}
	return sl
}

// forget removes ring key's slot once its claim has ended. A connection
// that reached the slot as the claim gave up is refused at once: with
// its slot gone, its handshake's claim timeout would find nothing to
// take back, and it would stay open and unanswered.
func (s *Service) forget(key slotKey) {
	s.mu.Lock()
	var late *inbound
	if sl, ok := s.mu.slots[key]; ok {
		select {
		case late = <-sl:
		default:
		}
		delete(s.mu.slots, key)
	}
	s.mu.Unlock()
	if late != nil {
		close(late.claimed) // its handshake need not wait any longer
		writeReply(late.conn, replyRefused, "ringtcp: the rank here gave up waiting for its left-hand neighbour")
		late.conn.Close()
	}
}

// takeBack removes an unclaimed connection from its slot and reports
// whether it did.
func (s *Service) takeBack(key slotKey, in *inbound) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.mu.slots[key]
	if !ok {
		return false
	}
	select {
	case got := <-sl:
		if got != in {
			sl <- got
			return false
		}
		delete(s.mu.slots, key)
		return true
	default:
		return false
	}
}

// claim waits for the connection of ring key from rank from.
func (s *Service) claim(ctx context.Context, key slotKey, from, size int) (*inbound, error) {
	sl := s.slot(key)
	defer s.forget(key)
	select {
	case in := <-sl:
		close(in.claimed)
		if int(in.from) != from || int(in.size) != size {
			err := fmt.Errorf("rank %d of a ring of %d connected, but the left-hand neighbour is rank %d of %d", in.from, in.size, from, size)
			writeReply(in.conn, replyRefused, "ringtcp: "+err.Error())
			in.conn.Close()
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// otherListener hands out the connections that are not the ring's.
type otherListener struct {
	s     *Service
	conns chan net.Conn
}

func (l *otherListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.s.closed:
		return nil, net.ErrClosed
	}
}

func (l *otherListener) Close() error   { return l.s.shut() }
func (l *otherListener) Addr() net.Addr { return l.s.lis.Addr() }

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
