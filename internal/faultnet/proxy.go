// Package faultnet is a TCP proxy that injects network faults between two
// processes: it forwards connections to a target until told to black-hole
// them (stop forwarding, keep them open), cut them (close them and refuse
// new ones), delay them, or corrupt one byte in flight. Tests put it in front
// of a worker's ring port to see how a job behaves when the network fails.
package faultnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is how the proxy treats traffic.
type Mode int

const (
	// Forward passes bytes through unchanged.
	Forward Mode = iota
	// Blackhole keeps connections open but forwards nothing, and accepts
	// new connections without forwarding them either: a partition.
	Blackhole
	// Cut closes every connection and refuses new ones: a dead host.
	Cut
)

// Proxy forwards the connections it accepts to a target address.
type Proxy struct {
	lis net.Listener

	mu      sync.Mutex
	target  string
	mode    Mode
	delay   time.Duration
	flipAt  int64 // when ≥ 0, the forward-direction byte offset to corrupt
	flipped chan struct{}
	sent    int64 // forward-direction bytes sent so far
	conns   map[net.Conn]struct{}
	changed chan struct{} // closed and replaced on every change

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// Listen starts a proxy on addr (host:0 for any port) that forwards to
// target. An empty target is given later with SetTarget; connections
// accepted until then wait for it.
func Listen(addr, target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{target: target, lis: lis, flipAt: -1, conns: map[net.Conn]struct{}{},
		changed: make(chan struct{}), cancel: cancel}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.accept(ctx)
	}()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// SetTarget sets the address the proxy forwards new connections to.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
	p.notify()
}

// SetMode switches the proxy's mode; Cut closes every open connection.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == Cut {
		for c := range p.conns {
			c.Close()
		}
	}
	p.notify()
}

// SetDelay holds every chunk of forwarded data for d before passing it on.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
	p.notify()
}

// CorruptAfter flips the bits of one byte, the one n bytes further into
// the stream toward the target (all connections counted together), and
// returns a channel closed once it is done.
func (p *Proxy) CorruptAfter(n int64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flipAt, p.flipped = p.sent+n, make(chan struct{})
	return p.flipped
}

// notify wakes the goroutines waiting for a change; p.mu is held.
func (p *Proxy) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.lis.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept(ctx context.Context) {
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.mode == Cut {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(ctx, in)
		}()
	}
}

// serve forwards one connection in both directions.
func (p *Proxy) serve(ctx context.Context, in net.Conn) {
	defer p.forget(in)
	target, ok := p.awaitTarget(ctx)
	if !ok {
		return
	}
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[out] = struct{}{}
	p.mu.Unlock()
	defer p.forget(out)
	done := make(chan struct{}, 2)
	go func() { p.pipe(ctx, out, in, true); done <- struct{}{} }()
	go func() { p.pipe(ctx, in, out, false); done <- struct{}{} }()
	<-done // either side ending ends both
	in.Close()
	out.Close()
	<-done
}

// awaitTarget returns the target once it is set, or false if the proxy
// closes first.
func (p *Proxy) awaitTarget(ctx context.Context) (string, bool) {
	for {
		p.mu.Lock()
		target, changed := p.target, p.changed
		p.mu.Unlock()
		if target != "" {
			return target, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", false
		}
	}
}

func (p *Proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pipe copies src to dst, applying the proxy's faults; forward is the
// direction toward the target.
func (p *Proxy) pipe(ctx context.Context, dst io.Writer, src io.Reader, forward bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.pass(ctx, buf[:n], forward, dst) {
			return
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the proxy black-holes, delays, corrupts if due, and
// writes b; it reports whether to go on.
func (p *Proxy) pass(ctx context.Context, b []byte, forward bool, dst io.Writer) bool {
	var delay time.Duration
	for {
		p.mu.Lock()
		mode, changed := p.mode, p.changed
		delay = p.delay
		if mode == Forward {
			if forward {
				if p.flipAt >= p.sent && p.flipAt < p.sent+int64(len(b)) {
					b[p.flipAt-p.sent] ^= 0xff
					p.flipAt = -1
					close(p.flipped)
				}
				p.sent += int64(len(b))
			}
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		if mode == Cut {
			return false
		}
		select { // black-holed: hold the data until the mode changes
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
	}
	_, err := dst.Write(b)
	return err == nil
}
