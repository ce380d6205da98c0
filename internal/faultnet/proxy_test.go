package faultnet

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"ringtrain/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m) }

// echoServer echoes every connection until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { lis.Close(); <-done })
	return lis.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, msg []byte, timeout time.Duration) ([]byte, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

// dialProxy starts a proxy to target and connects to it; both close when
// the test ends.
func dialProxy(t *testing.T, target string) (*Proxy, net.Conn) {
	t.Helper()
	p, err := Listen("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

func TestProxyFaults(t *testing.T) {
	p, c := dialProxy(t, echoServer(t))
	msg := []byte("hello, ring")
	if got, err := roundTrip(t, c, msg, 5*time.Second); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("forward: %q, %v", got, err)
	}

	p.SetMode(Blackhole)
	if _, err := roundTrip(t, c, msg, 200*time.Millisecond); err == nil {
		t.Fatal("black-holed connection delivered data")
	}
	p.SetMode(Forward) // the held bytes go through now
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after the black hole: %q, %v", got, err)
	}

	p.SetDelay(300 * time.Millisecond)
	start := time.Now()
	if _, err := roundTrip(t, c, msg, 5*time.Second); err != nil || time.Since(start) < 600*time.Millisecond {
		t.Fatalf("delayed round trip took %v (%v), want two delays", time.Since(start), err)
	}
	p.SetDelay(0)

	flipped := p.CorruptAfter(3)
	if got, err := roundTrip(t, c, msg, 5*time.Second); err != nil || got[3] != msg[3]^0xff || !bytes.Equal(got[4:], msg[4:]) {
		t.Fatalf("corrupted round trip: %q, %v", got, err)
	}
	<-flipped

	p.SetMode(Cut)
	if _, err := roundTrip(t, c, msg, 5*time.Second); err == nil {
		t.Fatal("a cut connection still works")
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(t, c2, msg, 2*time.Second); err == nil {
			t.Fatal("a new connection works through a cut proxy")
		}
		c2.Close()
	}
}

// TestTargetSetLater: a connection accepted before the target is known
// waits for it, then forwards.
func TestTargetSetLater(t *testing.T) {
	p, c := dialProxy(t, "")
	msg := []byte("early")
	if _, err := roundTrip(t, c, msg, 200*time.Millisecond); err == nil {
		t.Fatal("a connection was answered before the proxy had a target")
	}
	p.SetTarget(echoServer(t))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after SetTarget: %q, %v; want the early message echoed", got, err)
	}
}
