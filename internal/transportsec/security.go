// Package transportsec is how ringtrain processes know each other: mutual
// TLS (for gRPC and the ring's data plane), the job's token on every RPC,
// the gossip encryption key, the member credentials the coordinator issues
// to the workers it admitted, development credentials, and the log lines
// that say which of these protect a listening port.
package transportsec

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"ringtrain/internal/grpcopts"
)

// Security is how a process proves itself to its peers and protects what
// it sends. Its zero value is insecure mode, for runs on one machine.
type Security struct {
	// CertFile and KeyFile are this process's certificate and key, and
	// CAFile the authority that signed every certificate of the job: with
	// all three, every gRPC connection is mutual TLS 1.3, and a peer
	// without a certificate of that authority cannot connect.
	CertFile, KeyFile, CAFile string
	// ServerName is the name clients check in servers' certificates (every
	// certificate of the job carries it); default "ringtrain".
	ServerName string
	// Token, when set, must accompany every RPC but health checks; a worker
	// without it cannot join, fetch a shard or open a gradient stream.
	Token string
	// GossipKey, when set, encrypts the memberlist gossip (AES with a 16,
	// 24 or 32 byte key, given in base64).
	GossipKey string
	// Insecure records the choice to accept anyone who reaches a port
	// beyond loopback, without a token or TLS: it turns Exposure's warning
	// into a note.
	Insecure bool

	tls *tls.Config // the loaded server configuration
}

// TokenHeader is the metadata key that carries the token.
const TokenHeader = "ringtrain-token"

// DefaultServerName is the name every certificate of a job carries.
const DefaultServerName = "ringtrain"

// Load checks and loads the credentials. It must be called before the
// options are used.
func (s *Security) Load() error {
	// Files and Secrets end their values with a newline.
	s.Token, s.GossipKey = strings.TrimSpace(s.Token), strings.TrimSpace(s.GossipKey)
	n := 0
	for _, f := range []string{s.CertFile, s.KeyFile, s.CAFile} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return errors.New("transportsec: mutual TLS needs a certificate, its key and the CA (-tls-cert, -tls-key, -tls-ca)")
	}
	if s.ServerName == "" {
		s.ServerName = DefaultServerName
	}
	if _, err := s.gossipKey(); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return fmt.Errorf("transportsec: TLS key pair: %w", err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return fmt.Errorf("transportsec: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("transportsec: TLS CA: no certificate in %s", s.CAFile)
	}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		RootCAs:      pool,
		ServerName:   s.ServerName,
		MinVersion:   tls.VersionTLS13,
	}
	return nil
}

// FillLocal gives a job whose workers all run on this machine, started by
// this process, the secrets the user did not: a random token and gossip
// key, which the children receive through their environment. Nobody else
// can then join the job, report for a worker or gossip about one. It
// returns what it generated, for the logs. Call it before Load.
func (s *Security) FillLocal() (generated []string) {
	if s.Token == "" {
		s.Token = newToken()
		generated = append(generated, "token")
	}
	if s.GossipKey == "" {
		s.GossipKey = newGossipKey()
		generated = append(generated, "gossip key")
	}
	return generated
}

// TLS reports whether mutual TLS is on.
func (s *Security) TLS() bool { return s.tls != nil }

// TLSConfig returns a copy of the loaded mutual TLS configuration, for
// connections that are not gRPC's (the ring's data plane), or nil when
// TLS is off.
func (s *Security) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// gossipKey decodes the gossip key.
func (s *Security) gossipKey() ([]byte, error) {
	if s.GossipKey == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.GossipKey))
	if err != nil {
		return nil, fmt.Errorf("transportsec: gossip key is not base64: %w", err)
	}
	if l := len(k); l != 16 && l != 24 && l != 32 {
		return nil, fmt.Errorf("transportsec: gossip key of %d bytes, want 16, 24 or 32", l)
	}
	return k, nil
}

// GossipKeyBytes is the decoded gossip key, nil without one.
func (s *Security) GossipKeyBytes() []byte {
	k, _ := s.gossipKey() // validated by Load
	return k
}

// Describe says, for the logs, which protections are on.
func (s *Security) Describe() string {
	var on, off []string
	add := func(ok bool, what string) {
		if ok {
			on = append(on, what)
		} else {
			off = append(off, what)
		}
	}
	add(s.TLS(), "mutual TLS")
	add(s.Token != "", "token")
	add(s.GossipKey != "", "gossip encryption")
	switch {
	case len(off) == 0:
		return "secure: " + strings.Join(on, ", ")
	case len(on) == 0:
		return "INSECURE: no mutual TLS, no token, plaintext gossip (fine on one machine; see the README's Security section)"
	}
	return "partly secure: " + strings.Join(on, ", ") + " on; " + strings.Join(off, ", ") + " off"
}

// The risks Exposure names: the coordinator's port, and a worker's ring
// port (whose streams must name the job's id, which only members learn).
const (
	CoordinatorRisk = "anyone who reaches this port can join the job, read its data and weights and feed it gradients"
	RingRisk        = "anyone who reaches this port and learns the job's id can feed this worker gradient frames"
)

// Exposure says, for the logs, who can reach a server listening at addr
// with these credentials: "" when a token or mutual TLS guards it or it
// listens on loopback only; otherwise a warning that names the risk (loud,
// in capitals, unless Insecure records the choice) and how to close it;
// loud is false once Insecure made it a choice.
func (s *Security) Exposure(addr net.Addr, risk string) (msg string, loud bool) {
	if s.TLS() || s.Token != "" || isLoopback(addr) {
		return "", false
	}
	if s.Insecure {
		return fmt.Sprintf("listening at %s without a token or TLS, by choice (-insecure): %s", addr, risk), false
	}
	return fmt.Sprintf("INSECURE: listening at %s, beyond loopback, without a token or TLS: %s; give every process -token (RINGTRAIN_TOKEN) "+
		"and -gossip-key, or mutual TLS (coordinator certs writes development credentials), or pass -insecure to make it a choice "+
		"(see the README's Security section)", addr, strings.ToUpper(risk)), true
}

// isLoopback reports whether addr is a TCP address on a loopback
// interface only.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// ServerOptions are the options of a gRPC server with these credentials.
func (s *Security) ServerOptions() []grpc.ServerOption {
	opts := grpcopts.ServerOptions()
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	if s.Token != "" {
		opts = append(opts, grpc.ChainUnaryInterceptor(s.unaryToken), grpc.ChainStreamInterceptor(s.streamToken))
	}
	return opts
}

// DialOptions are the options of a gRPC client with these credentials.
func (s *Security) DialOptions() []grpc.DialOption {
	opts := grpcopts.DialOptions()
	if s.tls != nil {
		opts[0] = grpc.WithTransportCredentials(credentials.NewTLS(s.tls))
	} else {
		opts[0] = grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	if s.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(s.Token)))
	}
	return opts
}

// healthPrefix names the methods that need no token: Kubernetes probes
// cannot send one, and health carries no secret.
const healthPrefix = "/grpc.health.v1.Health/"

// errToken is the status of an RPC without the right token.
var errToken = status.Error(codes.Unauthenticated, "ringtrain: missing or wrong token (set -token or RINGTRAIN_TOKEN to the job's)")

func (s *Security) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, got := range md.Get(TokenHeader) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) == 1 {
			return nil
		}
	}
	return errToken
}

func (s *Security) unaryToken(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Security) streamToken(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// tokenCreds sends the token with every RPC. It does not require
// transport security, so that a token alone protects a plaintext job
// against accidental joins (with TLS it is protected in transit too).
type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{TokenHeader: string(t)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return false }
