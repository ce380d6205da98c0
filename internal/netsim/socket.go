package netsim

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNamespace runs f on an OS thread switched into namespace ns; sockets
// f creates belong to that namespace for their whole life. The thread is
// discarded afterwards rather than switched back.
func InNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("netsim: namespace %s: %w", ns, err)
			return
		}
		defer fd.Close()
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netsim: enter namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Listen opens a TCP listener at addr inside node i's namespace.
func (n *Net) Listen(i int, addr string) (net.Listener, error) {
	var lis net.Listener
	err := InNamespace(n.Nodes[i].NS, func() (err error) {
		lis, err = net.Listen("tcp", addr)
		return err
	})
	return lis, err
}

// Dial connects to addr from inside node i's namespace.
func (n *Net) Dial(ctx context.Context, i int, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNamespace(n.Nodes[i].NS, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}
