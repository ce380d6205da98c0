// Package worker is a training worker: it joins a coordinator, fetches its
// shard and the initial weights, forms the ring with the other workers and
// then, step after step, computes the gradient of its part of the global
// batch, averages gradients with the ring all-reduce and applies the same
// optimiser step as every other replica.
package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Config configures a worker. DefaultConfig gives the defaults.
type Config struct {
	// Coordinator is the coordinator's host:port.
	Coordinator string
	// Listen is where the worker serves its Ring service, host:port; port
	// 0 picks a free port.
	Listen string
	// Advertise is the host:port the other workers dial to reach the Ring
	// service. Empty means the listening address, with an unspecified host
	// replaced by the address this machine uses to reach the coordinator.
	Advertise string
	// ID names the worker in the job; it must be unique. Default
	// hostname-pid.
	ID string
	// JoinTimeout bounds the wait for the coordinator to answer the first
	// time, and for the ring to form.
	JoinTimeout time.Duration
	// StopTimeout bounds the wait for the coordinator's word after the work
	// is done (the coordinator evaluates and writes the checkpoint first)
	// or has failed. A coordinator that dies is noticed at once.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultConfig returns a worker that listens on every interface at a free
// port and waits up to a minute for the coordinator.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Listen:      ":0",
		ID:          fmt.Sprintf("%s-%d", host, os.Getpid()),
		JoinTimeout: time.Minute,
		StopTimeout: 2 * time.Minute,
		Logger:      slog.Default(),
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Coordinator == "":
		return errors.New("worker: the coordinator address is required (-coordinator HOST:PORT)")
	case c.Listen == "":
		return errors.New("worker: a listen address is required")
	case c.ID == "":
		return errors.New("worker: an id is required")
	case c.JoinTimeout <= 0 || c.StopTimeout <= 0:
		return errors.New("worker: timeouts must be positive")
	}
	return nil
}
