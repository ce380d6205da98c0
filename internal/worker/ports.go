package worker

import (
	"errors"
	"net"
	"strings"
	"syscall"
)

// Movable names the addresses of a worker that are defaults rather than the
// user's choice. When such an address's port is taken, as it is for a
// second process of a job on one machine (the coordinator holds the gossip
// and metrics ports, another worker the ring port), the worker takes a free
// port instead and logs it: the others learn its ring and gossip addresses
// through the cluster.
type Movable struct {
	Listen, Gossip, Metrics bool
}

// bindMovable runs bind on addr. When addr's port is taken and movable, it
// runs bind again on a free port of the same host, logging the move.
func (w *worker) bindMovable(what, addr string, movable bool, bind func(addr string) error) error {
	err := bind(addr)
	if err == nil || !movable || !addrInUse(err) {
		return err
	}
	host, _, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return err
	}
	if err2 := bind(net.JoinHostPort(host, "0")); err2 != nil {
		return err
	}
	w.log.Info(what+": the default address "+addr+" is taken (another process of the job on this machine?); using a free port, logged below", "flag_to_set", flagOf[what])
	return nil
}

// flagOf names the flag that sets each movable address.
var flagOf = map[string]string{"ring service": "-listen", "gossip": "-gossip-listen", "metrics": "-metrics-listen"}

// addrInUse reports whether err is a listen on a port already taken; some
// libraries keep only the message of the system's error.
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
