package transportsec

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MemberHeader is the metadata key of a worker's member credential.
const MemberHeader = "ringtrain-member"

// Members issues and checks member credentials: the proof, on every call
// after Join, that the caller is the worker it says it is. A credential is
// the worker's id and an HMAC-SHA256 of it under a key that never leaves
// the coordinator's process, so only the coordinator can issue one, only
// the worker it was issued to holds it, and none survives a restart of the
// coordinator (its workers join again and get new ones). It protects with
// or without a token, and with or without TLS (in plaintext an eavesdropper
// could copy it, as it could the token; TLS closes that).
type Members struct {
	key [32]byte
}

// NewMembers returns an issuer with a fresh random key.
func NewMembers() *Members {
	m := &Members{}
	rand.Read(m.key[:]) // never fails (crypto/rand)
	return m
}

// Issue returns the credential of worker id.
func (m *Members) Issue(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id)) + "." + base64.RawURLEncoding.EncodeToString(m.mac(id))
}

func (m *Members) mac(id string) []byte {
	h := hmac.New(sha256.New, m.key[:])
	h.Write([]byte("ringtrain member\x00"))
	h.Write([]byte(id))
	return h.Sum(nil)
}

// errMember is the status of a call without a valid member credential. It
// says nothing about the job.
var errMember = status.Error(codes.Unauthenticated,
	"ringtrain: this call must carry the member credential the coordinator gives a worker when it joins; join first")

// Verify returns the id of the worker whose credential the incoming call
// carries, or an Unauthenticated status that discloses nothing about the
// job.
func (m *Members) Verify(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MemberHeader)
	if len(vals) != 1 {
		return "", errMember
	}
	idPart, macPart, ok := strings.Cut(vals[0], ".")
	if !ok {
		return "", errMember
	}
	id, err1 := base64.RawURLEncoding.DecodeString(idPart)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, m.mac(string(id))) {
		return "", errMember
	}
	return string(id), nil
}

// WithMemberCredential attaches the credential cred returns to every call
// of the connection once it is not empty: a worker dials before it joins,
// and learns its credential from the Join stream.
func WithMemberCredential(cred func() string) grpc.DialOption {
	attach := func(ctx context.Context) context.Context {
		if c := cred(); c != "" {
			return metadata.AppendToOutgoingContext(ctx, MemberHeader, c)
		}
		return ctx
	}
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(attach(ctx), desc, cc, method, opts...)
	})
}
