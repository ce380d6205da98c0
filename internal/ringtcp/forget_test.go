package ringtcp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLateNeighbourIsRefused: a left-hand neighbour whose connection
// reaches its slot as the claim gives up (select picks the context's end)
// is answered with a refusal and closed, not left open until its claim
// timeout finds the slot gone.
func TestLateNeighbourIsRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Listen(lis, ServiceConfig{ClaimTimeout: time.Hour})
	defer s.Close()
	key := slotKey{"job", 1}
	// A TCP pair, whose buffers take the reply while no one reads yet.
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	client, err := net.Dial("tcp", peer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := peer.Accept()
	if err != nil {
		t.Fatal(err)
	}
	in := &inbound{conn: server, from: 0, size: 2, claimed: make(chan struct{})}
	s.slot(key) <- in
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The slot is ready too: select may take it; run until it does not.
	for {
		got, err := s.claim(ctx, key, 0, 2)
		if err != nil {
			break
		}
		got.claimed = make(chan struct{})
		s.slot(key) <- got
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, text, err := readReply(client)
	if err != nil || kind != replyRefused || !strings.Contains(text, "gave up") {
		t.Fatalf("reply %d %q, %v: want a refusal saying the rank gave up", kind, text, err)
	}
	select {
	case <-in.claimed:
	default:
		t.Fatal("the late connection's handshake was left waiting")
	}
}
