package ringtcp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
	"ringtrain/internal/testmain"
	"ringtrain/internal/transportsec"
)

func TestMain(m *testing.M) { testmain.Run(m) }

// startServices starts n Services on loopback and closes them when the
// test ends.
func startServices(t testing.TB, n int, cfg ServiceConfig) ([]*Service, []string) {
	t.Helper()
	svcs := make([]*Service, n)
	addrs := make([]string, n)
	for i := range svcs {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		svcs[i], _ = Listen(lis, cfg)
		t.Cleanup(func() { svcs[i].Close() })
		addrs[i] = lis.Addr().String()
	}
	return svcs, addrs
}

// connectRing connects n ranks with the given credentials.
func connectRing(t testing.TB, n int, job string, svcCfg ServiceConfig, cfg Config) []allreduce.Transport {
	t.Helper()
	svcs, addrs := startServices(t, n, svcCfg)
	ts := make([]allreduce.Transport, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.JobID, c.Generation, c.Rank, c.Addrs = job, 1, r, addrs
			tr, err := Connect(ctx, svcs[r], c)
			if err == nil {
				ts[r] = tr
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			for _, tr := range ts {
				if tr != nil {
					tr.Close()
				}
			}
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return ts
}

func TestTCPTransportConformance(t *testing.T) {
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport {
		return connectRing(t, n, "conformance", ServiceConfig{}, Config{})
	})
}

// TestSharedMemoryConformance runs the suite with the frames in shared
// memory, checking that every direction of a ring on one host took it.
func TestSharedMemoryConformance(t *testing.T) {
	needShm(t)
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport {
		ts := connectRing(t, n, "shm", ServiceConfig{}, Config{SharedMemory: true, SharedMemoryBytes: 64 << 10})
		for r, tr := range ts {
			if to, from := tr.(*Transport).SharedMemory(); n > 1 && (!to || !from) {
				t.Fatalf("rank %d of %d: shared memory to the right %v, from the left %v; want both", r, n, to, from)
			}
		}
		return ts
	})
}

// tlsConfig loads development credentials as a worker does.
func tlsConfig(t testing.TB) *tls.Config {
	t.Helper()
	dc, err := transportsec.GenerateDevCredentials(filepath.Join(t.TempDir(), "creds"), []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sec := &transportsec.Security{CertFile: dc.Cert, KeyFile: dc.Key, CAFile: dc.CA}
	if err := sec.Load(); err != nil {
		t.Fatal(err)
	}
	return sec.TLSConfig()
}

// TestMutualTLSConformance runs the suite's sums over mutual TLS 1.3 with
// a token, and checks the connection's version.
func TestMutualTLSConformance(t *testing.T) {
	tc := tlsConfig(t)
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport {
		ts := connectRing(t, n, "tls", ServiceConfig{TLS: tc, Token: "s3cret"}, Config{TLS: tc, Token: "s3cret"})
		if n > 1 {
			c, ok := ts[0].(*Transport).out.(*tls.Conn)
			if !ok || c.ConnectionState().Version != tls.VersionTLS13 {
				t.Fatalf("rank 0's connection is %T, want TLS 1.3", ts[0].(*Transport).out)
			}
		}
		return ts
	})
}

// TestRefusesWithoutCredentials connects a rank without a certificate, and
// one with a wrong token, to a ring that requires them: Connect fails as
// soon as the right-hand neighbour refuses, well before its deadline,
// saying why.
func TestRefusesWithoutCredentials(t *testing.T) {
	tc := tlsConfig(t)
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no certificate", Config{Token: "s3cret"}, "hello"},
		{"wrong token", Config{TLS: tc, Token: "guess"}, "wrong token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svcs, addrs := startServices(t, 2, ServiceConfig{TLS: tc, Token: "s3cret", HandshakeTimeout: time.Second})
			const deadline = 10 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			c := tt.cfg
			c.JobID, c.Rank, c.Addrs = "job", 0, addrs
			start := time.Now()
			_, err := Connect(ctx, svcs[0], c)
			if err == nil || !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("connect without credentials: %v, want an error naming rank 1 and %q", err, tt.want)
			}
			if d := time.Since(start); d > deadline/2 {
				t.Fatalf("refusal took %v, want it well before the %v deadline", d, deadline)
			}
			t.Log(err)
		})
	}
}

// TestOtherConnectionsReachTheOtherListener checks that a connection that
// is not the ring's arrives, bytes intact, at the returned listener.
func TestOtherConnectionsReachTheOtherListener(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, other := Listen(lis, ServiceConfig{})
	defer svc.Close()
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const msg = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got, err := other.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
}

// TestCloseCutsShortAPendingHandshake closes a Service while a connection
// has sent only part of its preamble: Close must not wait out the
// handshake timeout.
func TestCloseCutsShortAPendingHandshake(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := Listen(lis, ServiceConfig{HandshakeTimeout: time.Minute})
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(preamble[:3])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the Service start sorting it; the test holds either way
	start := time.Now()
	svc.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// TestCloseWritesQueuedFrames sends small frames, which Send queues, and
// closes at once: the neighbour still receives every one.
func TestCloseWritesQueuedFrames(t *testing.T) {
	ts := connectRing(t, 2, "drain", ServiceConfig{}, Config{})
	defer ts[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const frames = 10
	data := make([]byte, 1024)
	for i := 0; i < frames; i++ {
		if err := ts[0].Send(ctx, &allreduce.Frame{Step: 1, Seq: uint32(i), Length: 128, Data: [][]byte{data}}); err != nil {
			t.Fatal(err)
		}
	}
	ts[0].Close()
	for i := 0; i < frames; i++ {
		var f allreduce.Frame
		if err := ts[1].Recv(ctx, &f); err != nil || f.Seq != uint32(i) {
			t.Fatalf("frame %d: seq %d, %v", i, f.Seq, err)
		}
	}
}

// TestOlderProtocolIsRefused: a worker of protocol 1 (no shared-memory
// offers) that connects is refused saying why, not misread.
func TestOlderProtocolIsRefused(t *testing.T) {
	_, addrs := startServices(t, 1, ServiceConfig{})
	c, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(oldPreamble)); err != nil {
		t.Fatal(err)
	}
	kind, text, err := readReply(c)
	if err != nil || kind != replyRefused || !strings.Contains(text, "protocol 1") {
		t.Fatalf("reply %d %q, %v: want a refusal naming the protocols", kind, text, err)
	}
}
