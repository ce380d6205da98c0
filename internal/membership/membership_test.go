package membership

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/testmain"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

// memberlist.Shutdown does not wait for a probe in flight to end; that
// goroutine finishes on its own.
func TestMain(m *testing.M) {
	testmain.Run(m, goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).triggerFunc"))
}

// startNodes starts nodes on loopback with fast probes, all joined to the
// first.
func startNodes(t *testing.T, names ...string) []*Node {
	t.Helper()
	var nodes []*Node
	for i, name := range names {
		role := Worker
		if i == 0 {
			role = Coordinator
		}
		n, err := Start(Config{Name: name, Bind: "127.0.0.1:0", ProbeInterval: 50 * time.Millisecond,
			ProbeTimeout: 20 * time.Millisecond, Meta: Meta{Role: role, GRPC: name + ":1"}})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		if i > 0 {
			if _, err := n.Join([]string{nodes[0].Addr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nodes
}

// next waits for an event about name of the given kind on n.
func next(t *testing.T, n *Node, kind EventKind, name string) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-n.Events():
			if e.Kind == kind && e.Name == name {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event for %s", kind, name)
		}
	}
}

func TestJoinLeaveAndFailure(t *testing.T) {
	nodes := startNodes(t, "coord", "w1", "w2")
	c := nodes[0]
	e := next(t, c, Joined, "w2")
	if e.Meta.Role != Worker || e.Meta.GRPC != "w2:1" {
		t.Fatalf("w2 joined with meta %+v", e.Meta)
	}
	// With probes this fast a busy machine (the race detector, other
	// packages' tests) can have a member suspected for a moment, until it
	// refutes: wait for all three rather than read the list once.
	for deadline := time.Now().Add(10 * time.Second); len(c.Members()) != 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d members after 10s, want 3", len(c.Members()))
		}
	}
	if err := nodes[1].SetState("training"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, c, Updated, "w1"); e.Meta.State != "training" {
		t.Fatalf("w1 updated to %+v", e.Meta)
	}
	if err := nodes[1].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	next(t, c, Left, "w1")
	nodes[2].Shutdown() // dies without a word
	start := time.Now()
	next(t, c, Failed, "w2")
	t.Logf("failure detected after %v", time.Since(start).Round(time.Millisecond))
	c.Shutdown()
}

func TestJoinNeedsSeeds(t *testing.T) {
	n, err := Start(Config{Name: "lonely", Bind: "127.0.0.1:0", Transport: (&memberlist.MockNetwork{}).NewTransport("lonely")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if _, err := n.Join(nil); err == nil {
		t.Fatal("joined without seeds")
	}
}

// TestJoinByName joins through a host name, as a Kubernetes headless
// service's DNS name, rather than an address.
func TestJoinByName(t *testing.T) {
	nodes := startNodes(t, "seed")
	defer nodes[0].Shutdown()
	_, port, _ := net.SplitHostPort(nodes[0].Addr())
	n, err := Start(Config{Name: "named", Bind: "127.0.0.1:0", Meta: Meta{Role: Worker}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if k, err := n.Join([]string{"localhost:" + port}); err != nil || k < 1 {
		t.Fatalf("join by name: %d, %v", k, err)
	}
	next(t, nodes[0], Joined, "named")
}

// TestGossipKeyKeepsStrangersOut encrypts a cluster's gossip: a node with
// the key joins, a node without it or with another key cannot, and the
// cluster never lists it.
func TestGossipKeyKeepsStrangersOut(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	start := func(name string, key []byte) *Node {
		n, err := Start(Config{Name: name, Bind: "127.0.0.1:0", ProbeInterval: 50 * time.Millisecond,
			ProbeTimeout: 20 * time.Millisecond, SecretKey: key, Meta: Meta{Role: Worker, GRPC: name + ":1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		return n
	}
	seed := start("seed", key)
	if _, err := start("friend", key).Join([]string{seed.Addr()}); err != nil {
		t.Fatalf("a node with the key cannot join: %v", err)
	}
	if _, err := start("stranger", nil).Join([]string{seed.Addr()}); err == nil {
		t.Error("a node without the key joined")
	}
	other := []byte("fedcba9876543210fedcba9876543210")
	if _, err := start("impostor", other).Join([]string{seed.Addr()}); err == nil {
		t.Error("a node with another key joined")
	}
	time.Sleep(300 * time.Millisecond) // several probe rounds
	for _, m := range seed.Members() {
		if m.Name == "stranger" || m.Name == "impostor" {
			t.Errorf("the cluster lists %s", m.Name)
		}
	}
}

// TestJoinErrorIsOneLine: a join that fails says why on one line (memberlist
// reports a list of errors over several), still wrapping the cause.
func TestJoinErrorIsOneLine(t *testing.T) {
	n, err := Start(Config{Name: "lonely", Bind: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nobody listens there now
	_, err = n.Join([]string{dead})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("join error %q: want one line naming %s", err, dead)
	}
	var multi interface{ WrappedErrors() []error }
	if !errors.As(err, &multi) {
		t.Fatal("the join error no longer wraps memberlist's")
	}
}
