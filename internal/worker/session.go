package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"ringtrain/internal/transportsec"
	pb "ringtrain/proto"
)

// session is the worker's connection to one coordinator.
type session struct {
	w      *worker
	conn   *grpc.ClientConn
	client pb.CoordinatorClient
	rep    *reporter
	// instructions carries Assignments and Stops; lost is closed when the
	// Join stream ends, lostErr saying why.
	instructions chan *pb.Instruction
	lost         chan struct{}
	lostErr      error
	// ring controls the ring running now; the instruction reader pauses or
	// aborts it.
	ring ringControl
	// assigned records that the coordinator gave this session work.
	assigned atomic.Bool
	// credential is the member credential of the Join stream's Welcome,
	// which every later call to the coordinator carries.
	credential atomic.Pointer[string]
}

// memberCredential is the session's credential, "" before the Welcome.
func (s *session) memberCredential() string {
	if c := s.credential.Load(); c != nil {
		return *c
	}
	return ""
}

// ringControl lets the instruction reader reach the running ring.
//
// The reader acts on a Pause or an Abort at once, while the Assignment of
// the ring it is meant for may still wait in the queue (the coordinator
// pauses a ring as soon as it forms when a worker joins): an instruction
// for a generation newer than the running one is kept, and applied when
// that ring starts, so that no member misses it and stalls the others.
type ringControl struct {
	mu         sync.Mutex
	generation uint32
	running    bool
	cancel     context.CancelCauseFunc
	pause      atomic.Bool
	// checkpoint asks rank 0 to upload its state at the pause.
	checkpoint atomic.Bool
	// early holds instructions for ring generation early.generation,
	// not started yet.
	early struct {
		generation        uint32
		pause, checkpoint bool
		abort             error
	}
}

// start marks ring generation g as running and returns its context, with
// the pause or abort that came for it before it started.
func (rc *ringControl) start(parent context.Context, g uint32) context.Context {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ctx, cancel := context.WithCancelCause(parent)
	rc.generation, rc.running, rc.cancel = g, true, cancel
	e := rc.early
	if e.generation != g {
		e.pause, e.checkpoint, e.abort = false, false, nil
	}
	if rc.early.generation <= g {
		rc.early.generation, rc.early.pause, rc.early.checkpoint, rc.early.abort = 0, false, false, nil
	}
	rc.pause.Store(e.pause)
	rc.checkpoint.Store(e.checkpoint)
	if e.abort != nil {
		cancel(e.abort)
	}
	return ctx
}

// later reports whether generation g has not started yet, and makes it
// the one whose early instructions are kept (the newest wins). The caller
// holds rc.mu.
func (rc *ringControl) later(g uint32) bool {
	if g <= rc.generation || g < rc.early.generation {
		return false
	}
	if g > rc.early.generation {
		rc.early.generation, rc.early.pause, rc.early.checkpoint, rc.early.abort = g, false, false, nil
	}
	return true
}

// end marks the running ring as over.
func (rc *ringControl) end() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.cancel != nil {
		rc.cancel(nil)
	}
	rc.running, rc.cancel = false, nil
}

// abort cancels ring g, if it is the running one (g 0: whichever runs),
// or when it starts, if it has not yet.
func (rc *ringControl) abort(g uint32, cause error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch {
	case rc.running && (g == 0 || g == rc.generation):
		rc.cancel(cause)
	case g != 0 && rc.later(g):
		rc.early.abort = cause
	}
}

// requestPause sets the pause flag of ring g, if it is the running one,
// or for when it starts, if it has not yet.
func (rc *ringControl) requestPause(p *pb.Pause) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch {
	case rc.running && p.Generation == rc.generation:
		if p.Checkpoint {
			rc.checkpoint.Store(true)
		}
		rc.pause.Store(true)
	case rc.later(p.Generation):
		rc.early.pause = true
		rc.early.checkpoint = rc.early.checkpoint || p.Checkpoint
	}
}

// errAborted is the cause of a ring aborted by the coordinator.
var errAborted = errors.New("the coordinator aborted the ring")

// session joins the coordinator at addr and follows its instructions until
// the job ends for this worker. It returns errCoordinatorLost (wrapped) when
// the coordinator goes away, and whether the coordinator gave it work.
func (w *worker) session(ctx context.Context, addr string) (assigned bool, err error) {
	s := &session{w: w, instructions: make(chan *pb.Instruction, 16), lost: make(chan struct{})}
	conn, err := grpc.NewClient(addr, append(w.cfg.Security.DialOptions(), transportsec.WithMemberCredential(s.memberCredential))...)
	if err != nil {
		return false, fmt.Errorf("worker: coordinator %s: %w", addr, err)
	}
	defer conn.Close()
	s.conn, s.client = conn, pb.NewCoordinatorClient(conn)
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	defer func() { assigned = s.assigned.Load() }()
	stream, err := s.join(streamCtx, addr)
	if st := (*stopped)(nil); errors.As(err, &st) {
		return false, s.stop(st.Stop)
	}
	if err != nil {
		return false, err
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		s.readInstructions(stream)
	}()
	defer readers.Wait()
	defer cancelStream()
	if s.rep, err = startReporter(streamCtx, s.client, w.log); err != nil {
		return false, fmt.Errorf("worker: %w: %v", errCoordinatorLost, err)
	}
	defer s.rep.close()
	return false, s.follow(ctx)
}

// join opens the Join stream, waiting up to JoinTimeout for the
// coordinator to be reachable.
func (s *session) join(ctx context.Context, addr string) (pb.Coordinator_JoinClient, error) {
	w := s.w
	waitCtx, cancel := context.WithTimeout(ctx, w.cfg.JoinTimeout)
	defer cancel()
	// Wait for the coordinator to answer, within JoinTimeout; the Join
	// stream itself is opened on ctx, so that it outlives the wait.
	if err := s.awaitCoordinator(waitCtx); err != nil {
		if isHandshakeFailure(err) {
			// Retrying cannot help: the credentials do not match.
			return nil, fmt.Errorf("worker: the TLS handshake with the coordinator at %s failed (do both use certificates of the same CA?): %v", addr, err)
		}
		return nil, fmt.Errorf("worker: coordinator at %s not reachable within %v: %w: %v", addr, w.cfg.JoinTimeout, errCoordinatorLost, err)
	}
	host, _ := os.Hostname()
	req := &pb.JoinRequest{WorkerId: w.cfg.ID, RingAddr: w.advert, Hostname: host, Pid: int64(os.Getpid())}
	stream, err := s.client.Join(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("worker: join the coordinator at %s: %w: %v", addr, errCoordinatorLost, err)
	}
	// The Welcome comes first, with the credential every later call
	// needs; or the Stop of a job that is over.
	in, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("worker: join the coordinator at %s: %w: %v", addr, errCoordinatorLost, err)
	}
	if st := in.GetStop(); st != nil {
		return nil, &stopped{st}
	}
	cred := in.GetWelcome().GetCredential()
	if cred == "" {
		return nil, fmt.Errorf("worker: the coordinator at %s sent %T before a member credential (a coordinator of another version?)", addr, in.Kind)
	}
	s.credential.Store(&cred)
	w.log.Info("joined the coordinator", "coordinator", addr, "ring_addr", w.advert)
	return stream, nil
}

// readInstructions sorts the coordinator's instructions: pauses and aborts
// act on the running ring at once, assignments and stops queue for follow.
func (s *session) readInstructions(stream pb.Coordinator_JoinClient) {
	defer close(s.lost)
	for {
		in, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the coordinator ended the session")
			}
			s.lostErr = fmt.Errorf("%w: %v", errCoordinatorLost, err)
			s.ring.abort(0, s.lostErr)
			return
		}
		switch k := in.Kind.(type) {
		case *pb.Instruction_Pause:
			s.ring.requestPause(k.Pause)
		case *pb.Instruction_Abort:
			s.ring.abort(k.Abort.Generation, fmt.Errorf("%w: %s", errAborted, k.Abort.Reason))
		case *pb.Instruction_Stop:
			if k.Stop.Failed {
				s.ring.abort(0, fmt.Errorf("the coordinator stopped the job: %s", k.Stop.Reason))
			}
			s.instructions <- in
		default:
			s.instructions <- in
		}
	}
}

// stopped is the answer to a Join of a job that is over: its Stop.
type stopped struct{ *pb.Stop }

func (e *stopped) Error() string { return "the job is over" }

// stop ends the worker's part in the job as st says.
func (s *session) stop(st *pb.Stop) error {
	w := s.w
	w.closeRing()
	if st.Failed {
		return fmt.Errorf("worker %s: the coordinator stopped the job: %s", w.cfg.ID, st.Reason)
	}
	w.released = true
	w.log.Info("done: the coordinator released this worker")
	return nil
}

// follow carries out assignments until a Stop, the coordinator's loss, or
// a drain before any assignment (after one, a drain pauses the ring and the
// coordinator answers the worker's leaving with a Stop).
func (s *session) follow(ctx context.Context) error {
	w := s.w
	for {
		var drain <-chan struct{}
		if !s.assigned.Load() {
			drain = w.cfg.Drain
		}
		select {
		case in := <-s.instructions:
			if st := in.GetStop(); st != nil {
				return s.stop(st)
			}
			if a := in.GetAssignment(); a != nil {
				if err := w.checkMemory(a); err != nil {
					return err
				}
				s.assigned.Store(true)
				if err := s.runRing(ctx, a); err != nil {
					return err
				}
			}
		case <-s.lost:
			// The coordinator ends a session by sending its Stop and
			// closing the stream, which the reader sees at once: the
			// Stop may wait in the queue when the loss is seen first.
			for {
				select {
				case in := <-s.instructions:
					if st := in.GetStop(); st != nil {
						return s.stop(st)
					}
				default:
					return s.lostErr
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-drain:
			w.log.Info("drained before any assignment; leaving")
			return nil
		}
	}
}

// awaitCoordinator asks the coordinator's health service until it answers
// or ctx ends, and returns the last error. A failed TLS handshake ends the
// wait at once.
func (s *session) awaitCoordinator(ctx context.Context) error {
	for {
		_, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil || isHandshakeFailure(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// isHandshakeFailure reports whether err is a connection refused by the
// TLS handshake (a certificate from another CA, or none).
func isHandshakeFailure(err error) bool {
	return status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "authentication handshake failed")
}
