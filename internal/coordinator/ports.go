package coordinator

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"ringtrain/internal/metrics"
)

// serveMetrics serves /metrics at addr. When addr is the default the user
// did not choose and its port is taken (a worker of the job started first
// on this machine holds it), a free port is used instead, and logged.
func (c *coordinator) serveMetrics(addr string) (*metrics.Server, error) {
	ms, err := metrics.Serve(addr, c.metrics.Registry)
	if err == nil || c.cfg.MetricsListen != "" || !addrInUse(err) {
		return ms, err
	}
	host, _, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return nil, err
	}
	ms, err2 := metrics.Serve(net.JoinHostPort(host, "0"), c.metrics.Registry)
	if err2 != nil {
		return nil, err
	}
	c.log.Info("metrics: the default address "+addr+" is taken (another process of the job on this machine?); using a free port", "addr", ms.Addr())
	return ms, nil
}

// gossipTaken adds advice to a gossip listen that failed on a default port
// already taken: the workers find the coordinator's gossip port by
// convention, so it does not move on its own.
func (c *coordinator) gossipTaken(err error) error {
	if c.cfg.GossipListen != "" || c.cfg.LocalWorkers > 0 || !addrInUse(err) {
		return err
	}
	return fmt.Errorf("%w (a worker started first on this machine holds it? start the coordinator first, or give it -gossip-listen HOST:PORT and the workers -join HOST:PORT)", err)
}

// addrInUse reports whether err is a listen on a port already taken; some
// libraries keep only the message of the system's error.
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
