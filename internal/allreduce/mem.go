package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// NewMemRing returns n transports connected in a ring by in-memory pipes,
// for tests. Closing a transport breaks both its pipes, as a dying process
// breaks its streams.
func NewMemRing(n int) []Transport {
	pipes := make([]*pipe, n) // pipes[r] carries frames from r to r+1
	for r := range pipes {
		pipes[r] = &pipe{frames: make(chan Frame, 4), closed: make(chan struct{})}
	}
	ts := make([]Transport, n)
	for r := range ts {
		ts[r] = &memTransport{rank: r, n: n, out: pipes[r], in: pipes[(r+n-1)%n]}
	}
	return ts
}

// pipe is a one-way, buffered frame channel that either end can break.
type pipe struct {
	frames chan Frame
	closed chan struct{}
	once   sync.Once
	err    error
}

func (p *pipe) close(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.closed)
	})
}

type memTransport struct {
	rank, n int
	out, in *pipe
}

func (t *memTransport) Rank() int   { return t.rank }
func (t *memTransport) Size() int   { return t.n }
func (t *memTransport) Left() Peer  { return Peer{Rank: (t.rank + t.n - 1) % t.n} }
func (t *memTransport) Right() Peer { return Peer{Rank: (t.rank + 1) % t.n} }

func (t *memTransport) Send(ctx context.Context, f *Frame) error {
	g := *f
	var data []byte
	for _, part := range f.Data {
		data = append(data, part...)
	}
	g.Data = [][]byte{data}
	select {
	case <-t.out.closed:
		return t.out.err
	default:
	}
	select {
	case t.out.frames <- g:
		return nil
	case <-t.out.closed:
		return t.out.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *memTransport) Recv(ctx context.Context, f *Frame) error {
	select {
	case g := <-t.in.frames: // frames sent before a close still arrive
		*f = g
		return nil
	default:
	}
	select {
	case g := <-t.in.frames:
		*f = g
		return nil
	case <-t.in.closed:
		return t.in.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrClosed is the error of a call on a pipe that one end closed.
var ErrClosed = errors.New("closed")

func (t *memTransport) Close() error {
	t.out.close(fmt.Errorf("rank %d: %w", t.rank, ErrClosed))
	t.in.close(fmt.Errorf("rank %d: %w", t.rank, ErrClosed))
	return nil
}
