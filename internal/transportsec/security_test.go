package transportsec

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "ringtrain/proto"
)

type shardServer struct {
	pb.UnimplementedCoordinatorServer
}

func (shardServer) FetchShard(*pb.ShardRequest, pb.Coordinator_FetchShardServer) error { return nil }

// serve starts a server with sec and returns its address.
func serve(t *testing.T, sec *Security) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(sec.ServerOptions()...)
	pb.RegisterCoordinatorServer(srv, shardServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// call makes one RPC that needs authentication, and a health check, which
// does not need the token.
func call(t *testing.T, addr string, sec *Security) (rpcErr, healthErr error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, sec.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // answers come in milliseconds
	defer cancel()
	stream, err := pb.NewCoordinatorClient(conn).FetchShard(ctx, &pb.ShardRequest{})
	if err == nil {
		_, err = stream.Recv()
		if err != nil && strings.Contains(err.Error(), "EOF") {
			err = nil
		}
	}
	_, healthErr = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err, healthErr
}

func creds(t *testing.T, dir, token string) *Security {
	t.Helper()
	dc, err := GenerateDevCredentials(dir, []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := &Security{CertFile: dc.Cert, KeyFile: dc.Key, CAFile: dc.CA, Token: token, GossipKey: dc.GossipKey}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMutualTLSAndToken checks who gets through a server with mutual TLS
// and a token: only a client with a certificate of the same CA and the
// token; health checks need the certificate but not the token.
func TestMutualTLSAndToken(t *testing.T) {
	good := creds(t, filepath.Join(t.TempDir(), "a"), "secret")
	addr := serve(t, good)
	if err, herr := call(t, addr, good); err != nil || herr != nil {
		t.Fatalf("the job's own credentials: %v, %v", err, herr)
	}
	otherCA := creds(t, filepath.Join(t.TempDir(), "b"), "secret")
	insecure := &Security{Token: "secret"}
	insecure.Load()
	wrongToken := *good
	wrongToken.Token = "guess"
	noToken := *good
	noToken.Token = ""
	for name, sec := range map[string]*Security{"no TLS": insecure, "another CA": otherCA} {
		if err, _ := call(t, addr, sec); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want the connection refused", name, err)
		}
	}
	for name, sec := range map[string]*Security{"wrong token": &wrongToken, "no token": &noToken} {
		err, herr := call(t, addr, sec)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "token") {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
		}
		if herr != nil {
			t.Errorf("%s: health check failed: %v", name, herr)
		}
	}
}

// TestTokenWithoutTLS protects a plaintext job against accidental joins.
func TestTokenWithoutTLS(t *testing.T) {
	sec := &Security{Token: "t0k"}
	if err := sec.Load(); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, sec)
	if err, _ := call(t, addr, sec); err != nil {
		t.Fatal(err)
	}
	none := &Security{}
	none.Load()
	if err, _ := call(t, addr, none); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	if !strings.Contains(none.Describe(), "INSECURE") || !strings.Contains(sec.Describe(), "token") {
		t.Fatalf("descriptions %q and %q", none.Describe(), sec.Describe())
	}
}

func TestLoadRejectsPartialTLSAndBadKeys(t *testing.T) {
	for _, s := range []*Security{{CertFile: "x"}, {GossipKey: "not base64!"}, {GossipKey: "AAAA"}} {
		if err := s.Load(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
