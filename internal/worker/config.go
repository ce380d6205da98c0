// Package worker is a training worker: it joins a coordinator and the job's
// gossip cluster, and for every ring the coordinator forms it fetches what it
// lacks (its lanes of the training set, the state to start from), connects
// to its ring neighbours and then, step after step, computes the gradient of
// its part of the global batch, sums gradients with the ring all-reduce and
// applies the same optimiser step as every other replica. Rings end when the
// job ends, when the workers agree to pause (a worker joins or leaves) or
// when a member is lost; the worker then reports what it applied and waits
// for the next ring, keeping its process and its state.
package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/sysmem"
	"ringtrain/internal/transportsec"
)

// DefaultRingPort is where a worker serves its Ring service by default.
const DefaultRingPort = 7071

// Config configures a worker. DefaultConfig gives the defaults.
type Config struct {
	// Coordinator is the coordinator's gRPC address, host:port. Empty means
	// finding it through the gossip cluster (Join).
	Coordinator string
	// Join lists gossip seeds: host:port, or host names whose every address
	// is tried (a Kubernetes headless service); the memberlist port 7946 is
	// assumed when a seed has none.
	Join []string
	// Listen is where the worker serves its Ring service, host:port; port
	// 0 picks a free port.
	Listen string
	// Advertise is the host:port the other workers dial to reach the Ring
	// service. Empty means the listening address, with an unspecified host
	// replaced by the address this machine uses to reach the coordinator.
	Advertise string
	// GossipListen and GossipAdvertise are the worker's memberlist
	// addresses.
	GossipListen, GossipAdvertise string
	// ProbeInterval and ProbeTimeout tune failure detection (zero: the
	// memberlist LAN defaults, 1 s and 500 ms).
	ProbeInterval, ProbeTimeout time.Duration
	// ID names the worker in the job; it must be unique. Default
	// hostname-pid.
	ID string
	// JoinTimeout bounds the wait for the coordinator to answer the first
	// time, and for a ring to form.
	JoinTimeout time.Duration
	// ReconnectTimeout bounds how long a worker that lost its coordinator
	// keeps trying to reach one (a restarted coordinator resumes the job).
	ReconnectTimeout time.Duration
	// StopTimeout bounds the wait for the coordinator's word once the work
	// is done (the coordinator evaluates and writes the checkpoint first).
	StopTimeout time.Duration
	// Security holds the worker's credentials (see transportsec.Security); the zero
	// value is insecure.
	Security transportsec.Security
	// HealthListen, when set, also serves the gRPC health service there,
	// in plaintext (Kubernetes probes cannot speak mutual TLS).
	HealthListen string
	// MetricsListen is where /metrics is served (empty or "-": nowhere).
	MetricsListen string
	// MemoryLimit bounds the memory the worker may need: an assignment
	// whose training is estimated to need more is refused before its first
	// step. Zero means the machine's memory, or its cgroup's limit when
	// lower.
	MemoryLimit sysmem.Bytes
	// Movable marks which of Listen, GossipListen and MetricsListen are
	// defaults the user did not choose: a taken port among them is
	// replaced by a free one (see Movable). The zero value moves none.
	Movable Movable
	// DataPlane carries the ring's frames: "tcp" (the default when empty)
	// on a dedicated TCP connection per neighbour (package ringtcp), or
	// "grpc" on gRPC streams (package ringrpc). Both share the Listen
	// port, and every worker of a job must use the same one.
	DataPlane string
	// SharedMemory lets the tcp data plane carry the frames to and from a
	// neighbour on the same host through shared memory (see package
	// ringtcp): both neighbours must allow it, and a neighbour on another
	// host or in another container stays on TCP whatever this says.
	// DefaultConfig sets it.
	SharedMemory bool
	// Drain, when closed, makes the worker leave the job at the next step
	// boundary, without a rollback (SIGTERM); its health turns NOT_SERVING.
	Drain  <-chan struct{}
	Logger *slog.Logger
}

// DefaultConfig returns a worker that listens on every interface: its ring
// on DefaultRingPort, gossip on memberlist's port, metrics on
// metrics.DefaultPort.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Listen:           fmt.Sprintf(":%d", DefaultRingPort),
		GossipListen:     fmt.Sprintf(":%d", membership.DefaultPort),
		MetricsListen:    fmt.Sprintf(":%d", metrics.DefaultPort),
		ID:               fmt.Sprintf("%s-%d", host, os.Getpid()),
		JoinTimeout:      time.Minute,
		ReconnectTimeout: 5 * time.Minute,
		StopTimeout:      2 * time.Minute,
		SharedMemory:     true,
		Logger:           slog.Default(),
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Coordinator == "" && len(c.Join) == 0:
		return errors.New("worker: give the coordinator (-coordinator HOST:PORT) or gossip seeds (-join)")
	case c.Listen == "" || c.GossipListen == "":
		return errors.New("worker: listen addresses are required")
	case c.ID == "":
		return errors.New("worker: an id is required")
	case c.JoinTimeout <= 0 || c.StopTimeout <= 0 || c.ReconnectTimeout < 0:
		return errors.New("worker: timeouts must be positive")
	case c.DataPlane != "" && c.DataPlane != "tcp" && c.DataPlane != "grpc":
		return fmt.Errorf("worker: data plane %q: want tcp or grpc", c.DataPlane)
	}
	return nil
}
