package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ringtrain/internal/ringrpc"
	"ringtrain/internal/rpc"
	pb "ringtrain/proto"
)

// Run runs the worker until its job ends, ctx ends or something fails. It
// returns nil when the coordinator reports the job complete.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger.With("worker", cfg.ID)
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("worker: listen: %w", err)
	}
	srv := grpc.NewServer(rpc.ServerOptions()...)
	ringSvc := ringrpc.NewService(cfg.JoinTimeout)
	pb.RegisterRingServer(srv, ringSvc)
	healthSvc := health.NewServer()
	healthpb.RegisterHealthServer(srv, healthSvc)
	var serving sync.WaitGroup
	serving.Add(1)
	go func() {
		defer serving.Done()
		srv.Serve(lis)
	}()
	defer serving.Wait()
	defer srv.Stop()

	conn, err := grpc.NewClient(cfg.Coordinator, rpc.DialOptions()...)
	if err != nil {
		return fmt.Errorf("worker: coordinator %s: %w", cfg.Coordinator, err)
	}
	defer conn.Close()

	advertise, err := advertiseAddr(cfg, lis.Addr())
	if err != nil {
		return err
	}
	log.Info("joining", "coordinator", cfg.Coordinator, "ring_addr", advertise)
	sess, err := join(ctx, pb.NewCoordinatorClient(conn), cfg, advertise, log)
	if err != nil {
		return err
	}
	defer sess.close()
	sess.ringSvc = ringSvc
	err = sess.run()
	healthSvc.Shutdown()
	return err
}

// advertiseAddr is the address other workers dial to reach this one.
func advertiseAddr(cfg Config, listening net.Addr) (string, error) {
	if cfg.Advertise != "" {
		return cfg.Advertise, nil
	}
	tcp := listening.(*net.TCPAddr)
	if !tcp.IP.IsUnspecified() {
		return tcp.String(), nil
	}
	// The address of the interface that routes to the coordinator; a UDP
	// "connection" sends nothing.
	c, err := net.Dial("udp", cfg.Coordinator)
	if err != nil {
		return "", fmt.Errorf("worker: cannot tell which address to advertise (set -advertise): %w", err)
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).IP
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port)), nil
}

// session is a worker's part in one job, from its assignment to its Stop.
type session struct {
	cfg     Config
	log     *slog.Logger
	client  pb.CoordinatorClient
	assign  *pb.Assignment
	ringSvc *ringrpc.Service
	// transport is the ring, once formed; run closes it.
	transport *ringrpc.Transport

	// ctx ends when the coordinator stops the job, is lost, or the caller
	// gives up; cancel ends it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// stopped is closed once the instruction stream has ended; stop then
	// holds the coordinator's Stop, or nil if the stream broke.
	stopped chan struct{}
	stop    *pb.Stop
	// streamCancel ends the Join stream.
	streamCancel context.CancelFunc
	readers      sync.WaitGroup
}

// errStopped is the cause of a session's end when the coordinator stopped
// the job.
var errStopped = errors.New("the coordinator stopped the job")

// join registers with the coordinator and waits for the assignment. The
// coordinator may be down or busy for up to JoinTimeout.
func join(parent context.Context, client pb.CoordinatorClient, cfg Config, advertise string, log *slog.Logger) (*session, error) {
	streamCtx, streamCancel := context.WithCancel(parent)
	waitCtx, waitCancel := context.WithTimeout(parent, cfg.JoinTimeout)
	defer waitCancel()
	stopWait := context.AfterFunc(waitCtx, func() {
		if waitCtx.Err() == context.DeadlineExceeded {
			streamCancel()
		}
	})
	defer stopWait()
	host, _ := os.Hostname()
	stream, err := client.Join(streamCtx, &pb.JoinRequest{WorkerId: cfg.ID, RingAddr: advertise, Hostname: host, Pid: int64(os.Getpid())},
		grpc.WaitForReady(true))
	var first *pb.Instruction
	if err == nil {
		first, err = stream.Recv()
	}
	if err != nil {
		streamCancel()
		if waitCtx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("worker: no assignment from the coordinator at %s within %v: %w", cfg.Coordinator, cfg.JoinTimeout, err)
		}
		return nil, fmt.Errorf("worker: join the coordinator at %s: %w", cfg.Coordinator, err)
	}
	if st := first.GetStop(); st != nil {
		streamCancel()
		return nil, fmt.Errorf("worker: the coordinator ended the job before it started: %s", st.Reason)
	}
	a := first.GetAssignment()
	if a == nil || a.Job == nil {
		streamCancel()
		return nil, errors.New("worker: the coordinator's first instruction is not an assignment")
	}
	ctx, cancel := context.WithCancelCause(parent)
	s := &session{cfg: cfg, log: log.With("rank", a.Rank), client: client, assign: a, ctx: ctx, cancel: cancel,
		stopped: make(chan struct{}), streamCancel: streamCancel}
	s.readers.Add(1)
	go s.readInstructions(stream)
	return s, nil
}

// readInstructions waits for the coordinator's Stop, or for the stream to
// break, and ends the session's context either way.
func (s *session) readInstructions(stream pb.Coordinator_JoinClient) {
	defer s.readers.Done()
	defer close(s.stopped)
	for {
		in, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the coordinator ended the session")
			}
			s.cancel(fmt.Errorf("worker: lost the coordinator: %w", err))
			return
		}
		if st := in.GetStop(); st != nil {
			s.stop = st
			if st.Failed {
				s.cancel(fmt.Errorf("%w: %s", errStopped, st.Reason))
			} else {
				s.cancel(errStopped)
			}
			return
		}
	}
}

// awaitStop waits up to StopTimeout for the coordinator's Stop and returns
// it, or nil.
func (s *session) awaitStop() *pb.Stop {
	select {
	case <-s.stopped:
		return s.stop
	case <-time.After(s.cfg.StopTimeout):
		return nil
	}
}

func (s *session) close() {
	s.closeRing()
	s.cancel(errors.New("worker: session closed"))
	s.streamCancel()
	s.readers.Wait()
}
