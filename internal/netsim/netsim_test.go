package netsim

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestShapedLink sends between two nodes of a 100 Mb/s network: a bulk
// transfer goes no faster than the rate, and Close removes every
// namespace.
func TestShapedLink(t *testing.T) {
	testLink(t, 100e6, 0)
}

// TestDelayedLink adds a 5 ms one-way delay, where the kernel can: a
// round trip takes at least the two delays.
func TestDelayedLink(t *testing.T) {
	testLink(t, 100e6, 5*time.Millisecond)
}

func testLink(t *testing.T, rate float64, delay time.Duration) {
	if err := Check(); err != nil {
		t.Skipf("skipping the simulated network: %v", err)
	}
	ctx0, cancel0 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel0()
	n, err := Build(ctx0, Config{Nodes: 2, RateBits: int64(rate), Delay: delay, Prefix: "rtsimtest"})
	if errors.Is(err, ErrNoNetem) || errors.Is(err, ErrNoShaper) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	lis, err := n.Listen(1, n.Nodes[1].IP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	const bulk = 4 << 20
	served := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil { // ping
			served <- err
			return
		}
		if _, err := c.Write(b); err != nil { // pong
			served <- err
			return
		}
		_, err = io.CopyN(io.Discard, c, bulk)
		if err == nil {
			_, err = c.Write(b)
		}
		served <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := n.Dial(ctx, 0, lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := []byte{1}
	start := time.Now()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Fatalf("round trip %v, shorter than the two one-way delays of %v", rtt, delay)
	}
	start = time.Now()
	if _, err := c.Write(make([]byte, bulk)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if got := float64(8*bulk) / elapsed.Seconds(); got > 1.1*rate {
		t.Fatalf("%d bytes took %v: %.0f Mb/s, faster than the link's %.0f", bulk, elapsed, got/1e6, rate/1e6)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	t.Logf("4 MiB in %v (%.0f Mb/s)", elapsed, float64(8*bulk)/elapsed.Seconds()/1e6)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{n.Switch, n.Nodes[0].NS, n.Nodes[1].NS} {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Fatalf("namespace %s still there after Close (%v)", ns, err)
		}
	}
}

// TestBuildFailureTearsDown makes the second node's setup fail (its
// namespace exists already) and checks that what Build made is gone and
// what it did not make is left alone.
func TestBuildFailureTearsDown(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("skipping the simulated network: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prefix = "rtsimfail"
	if err := run(ctx, []string{"ip", "netns", "add", prefix + "-1"}); err != nil {
		t.Fatal(err)
	}
	defer run(context.Background(), []string{"ip", "netns", "del", prefix + "-1"})
	_, err := Build(ctx, Config{Nodes: 2, Prefix: prefix, Subnet: "10.214.0"})
	if err == nil {
		t.Fatal("Build succeeded over an existing namespace")
	}
	t.Log(err)
	for _, ns := range []string{prefix + "-sw", prefix + "-0"} {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind by the failed Build (%v)", ns, err)
		}
	}
	if _, err := os.Stat("/run/netns/" + prefix + "-1"); err != nil {
		t.Fatalf("the failed Build removed a namespace it did not make: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Nodes: 0}, {Nodes: 251}, {Nodes: 2, RateBits: -1}, {Nodes: 2, Prefix: "a-very-long-prefix-indeed"}} {
		if c.Validate() == nil {
			t.Errorf("%+v passed validation", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
