package ringrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ringtrain/internal/allreduce"
	pb "ringtrain/proto"
)

// Config describes one rank's place in a ring.
type Config struct {
	JobID      string
	Generation uint32
	Rank       int
	// Addrs are the members' Ring service addresses, by rank.
	Addrs []string
	// DialOptions connect to the right-hand neighbour.
	DialOptions []grpc.DialOption
}

// Transport is an allreduce.Transport over gRPC: frames go to the right-hand
// neighbour on a Pass stream this rank opened, and come from the left-hand
// neighbour on the Pass stream it opened to this rank's Service.
type Transport struct {
	cfg         Config
	left, right allreduce.Peer

	conn   *grpc.ClientConn
	out    pb.Ring_PassClient
	cancel context.CancelFunc
	in     *inbound

	sendMsg, recvMsg wireFrame

	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// Connect joins the ring cfg describes: it opens the stream to the right-hand
// neighbour and waits, until ctx ends, for the left-hand neighbour's stream
// to reach svc. Every rank of the ring calls Connect at about the same time.
func Connect(ctx context.Context, svc *Service, cfg Config) (*Transport, error) {
	n := len(cfg.Addrs)
	if cfg.Rank < 0 || cfg.Rank >= n {
		return nil, fmt.Errorf("ringrpc: rank %d outside a ring of %d", cfg.Rank, n)
	}
	l, r := (cfg.Rank+n-1)%n, (cfg.Rank+1)%n
	t := &Transport{
		cfg:    cfg,
		left:   allreduce.Peer{Rank: l, Addr: cfg.Addrs[l]},
		right:  allreduce.Peer{Rank: r, Addr: cfg.Addrs[r]},
		failed: make(chan struct{}),
	}
	if n == 1 {
		return t, nil
	}
	conn, err := grpc.NewClient(cfg.Addrs[r], cfg.DialOptions...)
	if err != nil {
		return nil, fmt.Errorf("ringrpc: connect to %v: %w", t.right, err)
	}
	t.conn = conn
	streamCtx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	// The stream outlives ctx, which only bounds the setup.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := t.open(ctx, streamCtx); err != nil {
		t.Close()
		return nil, fmt.Errorf("ringrpc: open stream to %v: %w", t.right, err)
	}
	t.in, err = svc.claim(ctx, slotKey{cfg.JobID, cfg.Generation}, int32(l))
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("ringrpc: wait for the stream of %v: %w", t.left, err)
	}
	return t, nil
}

// connectRetries bounds the retries of a stream to the right-hand
// neighbour whose connection fails (refused, unreachable, handshake
// refused): every member serves the ring before it joins the job, so a
// failure that outlasts them is a fault to report, not a start-up race.
var connectRetries = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// open opens the stream to the right-hand neighbour and says hello. A
// connection that fails is retried a few times; one still connecting is
// waited for until ctx ends.
func (t *Transport) open(ctx, streamCtx context.Context) error {
	client := pb.NewRingClient(t.conn)
	hello := &pb.RingFrame{Hello: &pb.Hello{JobId: t.cfg.JobID, Generation: t.cfg.Generation, FromRank: int32(t.cfg.Rank)}}
	for attempt := 0; ; attempt++ {
		out, err := client.Pass(streamCtx)
		if err == nil {
			t.out = out
			return out.Send(hello)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		}
		if status.Code(err) != codes.Unavailable || attempt == len(connectRetries) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(connectRetries[attempt]):
		}
	}
}

// ErrNeighbourGone is the error of a receive whose left-hand neighbour
// closed its stream: it left the ring after a failure of its own, or died.
var ErrNeighbourGone = errors.New("the neighbour ended its stream (it closed the ring or died)")

// orCtx prefers ctx's error, which says why a call was cut short.
func orCtx(ctx context.Context, err error) error {
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	return err
}

// ctxErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has
// passed even before ctx says so: neighbours sharing a deadline give up at
// the same moment, and the one whose context ends first may end its stream
// before the other's context has ended.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func (t *Transport) Rank() int             { return t.cfg.Rank }
func (t *Transport) Size() int             { return len(t.cfg.Addrs) }
func (t *Transport) Left() allreduce.Peer  { return t.left }
func (t *Transport) Right() allreduce.Peer { return t.right }

// fail breaks the transport with err, once, and reports whether this call
// broke it; later calls return the first error.
func (t *Transport) fail(err error) (first bool) {
	t.failOnce.Do(func() {
		first = true
		t.failErr = err
		close(t.failed)
		if t.cancel != nil {
			t.cancel()
		}
		if t.in != nil {
			// Ends the left-hand neighbour's stream with the reason.
			t.in.finish(status.Errorf(codes.Aborted, "ringrpc: rank %d left the ring: %v", t.cfg.Rank, err))
		}
	})
	return first
}

// failCall breaks the transport with a call's stream error and returns the
// error the call reports: err, unless the call failed only because the
// other direction had broken the transport while it ran (cancelling the
// outbound stream, or ending the inbound one), in which case the broken
// transport's error, which wraps the first failure and ErrBroken.
func (t *Transport) failCall(ctx context.Context, err error) error {
	if t.fail(err) || ctxErr(ctx) != nil {
		return err
	}
	return t.broken()
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

// watch breaks the transport if ctx ends during a call.
func (t *Transport) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { t.fail(context.Cause(ctx)) })
}

// Send implements allreduce.Transport.
func (t *Transport) Send(ctx context.Context, f *allreduce.Frame) error {
	if err := t.broken(); err != nil {
		return err
	}
	if t.out == nil {
		return errors.New("ringrpc: a ring of one has no neighbour")
	}
	defer t.watch(ctx)()
	m := &t.sendMsg
	m.step, m.seq, m.length, m.kind, m.data, m.abort, m.origin = f.Step, uint64(f.Seq), f.Length, uint64(f.Kind), f.Data, f.Abort, int32(f.Origin)
	err := t.out.SendMsg(m) // the codec copies the data before SendMsg returns
	m.data = nil
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		// The stream ended; its status says why.
		if rerr := t.out.RecvMsg(&pb.PassSummary{}); rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.Aborted {
			// The right-hand neighbour left the ring, and said why.
			err = fmt.Errorf("%w: %s", ErrNeighbourGone, st.Message())
		}
	}
	return t.failCall(ctx, orCtx(ctx, err))
}

// Recv implements allreduce.Transport.
func (t *Transport) Recv(ctx context.Context, f *allreduce.Frame) error {
	if err := t.broken(); err != nil {
		return err
	}
	if t.in == nil {
		return errors.New("ringrpc: a ring of one has no neighbour")
	}
	defer t.watch(ctx)()
	m := &t.recvMsg
	if err := t.in.stream.RecvMsg(m); err != nil {
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			err = ErrNeighbourGone
		}
		return t.failCall(ctx, orCtx(ctx, err))
	}
	if len(m.data) > 0 && checksum(m.data) != m.crc {
		err := fmt.Errorf("frame %d of step %d failed its CRC-32C check: corrupted in transit", m.seq, m.step)
		t.fail(err)
		return err
	}
	if m.hello != nil || m.seq > 1<<32 || m.kind > 255 {
		err := fmt.Errorf("malformed frame (hello %v, seq %d, kind %d)", m.hello != nil, m.seq, m.kind)
		t.fail(err)
		return err
	}
	*f = allreduce.Frame{Step: m.step, Seq: uint32(m.seq), Length: m.length, Kind: allreduce.Kind(m.kind), Data: m.data, Abort: m.abort, Origin: int(m.origin)}
	return nil
}

// Close ends both streams and the connection at once; the neighbours' calls
// fail. Frames this rank sent that its neighbour has not yet read may be
// lost, so a worker closes its ring only once every rank has finished its
// collectives (the coordinator's Stop says so) or the ring has failed.
func (t *Transport) Close() error {
	if t.in != nil {
		t.in.finish(nil) // the left-hand neighbour's call ends in good order
	}
	t.fail(errors.New("closed"))
	if t.out != nil {
		t.out.CloseSend()
	}
	if t.conn != nil {
		return t.conn.Close()
	}
	return nil
}
