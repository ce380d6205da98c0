// Package grpcopts holds the gRPC settings every ringtrain process
// shares: message size limits, flow-control windows, keepalives that notice
// dead peers and a buffer pool that does not clear what gRPC overwrites;
// and the two server routines that go with them, a plaintext health-only
// server for probes and a graceful stop with a bound. Who may connect is
// internal/transportsec's job.
package grpcopts

import (
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes is the largest message any ringtrain process sends or
// accepts. Shards, weights and gradients travel in chunks well below it.
const MaxMessageBytes = 8 << 20

// Flow control and socket buffers. A window of several segments keeps a
// sender from stalling on acknowledgements (gRPC's default starts at 64 KiB
// and grows only with its bandwidth estimate); larger buffers mean fewer
// system calls per segment.
const (
	WindowBytes = 16 << 20
	BufferBytes = 256 << 10
)

// Keepalive settings: a peer that stops answering pings for
// KeepaliveTime+KeepaliveTimeout is declared dead and its streams fail.
const (
	KeepaliveTime    = 5 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// ServerOptions returns the options for a ringtrain gRPC server.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.InitialWindowSize(WindowBytes),
		grpc.InitialConnWindowSize(WindowBytes),
		grpc.WriteBufferSize(BufferBytes),
		grpc.ReadBufferSize(BufferBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveTime / 2, PermitWithoutStream: true}),
		experimental.BufferPool(Pool),
	}
}

// DialOptions returns the options for connecting to a ringtrain server,
// insecure; its first option is the transport credentials, which
// transportsec.Security.DialOptions replaces.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithInitialWindowSize(WindowBytes),
		grpc.WithInitialConnWindowSize(WindowBytes),
		grpc.WithWriteBufferSize(BufferBytes),
		grpc.WithReadBufferSize(BufferBytes),
		experimental.WithBufferPool(Pool),
	}
}

// StopServer stops srv gracefully, so that messages already sent reach their
// peers, and forcibly once grace has passed.
func StopServer(srv *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		srv.Stop()
		<-done
	}
}

// ServeHealth serves only the health service h at addr, in plaintext, for
// probes that cannot present credentials; stop ends it.
func ServeHealth(addr string, h healthpb.HealthServer) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpcopts: health listen %s: %w", addr, err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	return func() {
		srv.Stop()
		<-done
	}, nil
}
