// Package rpc holds the gRPC settings every ringtrain process shares:
// message size limits, keepalives that notice dead peers, and credentials.
package rpc

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
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

// DialOptions returns the options for connecting to a ringtrain server.
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
