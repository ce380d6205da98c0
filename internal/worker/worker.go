package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/grpcopts"
	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/ringtcp"
	"ringtrain/internal/transportsec"
	pb "ringtrain/proto"
)

// errCoordinatorLost ends a session whose coordinator went away; the worker
// then tries to reach a coordinator again.
var errCoordinatorLost = errors.New("lost the coordinator")

// worker is the state that outlives a coordinator session: the servers,
// the gossip node and the model replica.
type worker struct {
	cfg     Config
	log     *slog.Logger
	ringSvc *ringrpc.Service
	ringTCP *ringtcp.Service
	health  *health.Server
	node    *membership.Node
	advert  string // the ring address others dial
	joined  bool   // the gossip node has joined the cluster

	metrics *metrics.Worker
	replica *replica
	// transport is the current ring, if any; it is closed when the next
	// instruction arrives (every member has finished with it by then).
	transport allreduce.Transport
	// released is set when the coordinator released the worker: its
	// gossip departure then needs no "leaving" state.
	released bool
}

// Run runs the worker until its job ends, ctx ends or something fails. It
// returns nil when the coordinator reports the job complete, or when the
// worker drained and left.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.Security.Load(); err != nil {
		return err
	}
	w := &worker{cfg: cfg, log: cfg.Logger.With("worker", cfg.ID), metrics: metrics.NewWorker()}
	w.log.Info("security", "mode", cfg.Security.Describe())
	if addr := cfg.MetricsListen; addr != "" && addr != "-" {
		var ms *metrics.Server
		err := w.bindMovable("metrics", addr, cfg.Movable.Metrics, func(addr string) (err error) {
			ms, err = metrics.Serve(addr, w.metrics.Registry)
			return err
		})
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		defer ms.Close()
		w.log.Info("serving metrics", "addr", ms.Addr())
	}
	var lis net.Listener
	err := w.bindMovable("ring service", cfg.Listen, cfg.Movable.Listen, func(addr string) (err error) {
		lis, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		if addrInUse(err) {
			return fmt.Errorf("worker: listen %s: the port is taken (another worker on this machine? give each its own -listen, or port 0 for a free one)", cfg.Listen)
		}
		return fmt.Errorf("worker: listen: %w", err)
	}
	w.log.Info("ring service listening", "addr", lis.Addr().String())
	if msg, loud := cfg.Security.Exposure(lis.Addr(), transportsec.RingRisk); loud {
		w.log.Warn(msg)
	} else if msg != "" {
		w.log.Info(msg)
	}
	// The ring's TCP data plane shares the port; gRPC gets the rest.
	w.ringTCP, lis = ringtcp.Listen(lis, ringtcp.ServiceConfig{TLS: cfg.Security.TLSConfig(), Token: cfg.Security.Token, ClaimTimeout: cfg.JoinTimeout})
	defer w.ringTCP.Close()
	srv := grpc.NewServer(w.cfg.Security.ServerOptions()...)
	w.ringSvc = ringrpc.NewService(cfg.JoinTimeout)
	pb.RegisterRingServer(srv, w.ringSvc)
	w.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, w.health)
	if cfg.HealthListen != "" {
		stop, err := grpcopts.ServeHealth(cfg.HealthListen, w.health)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		defer stop()
	}
	var serving sync.WaitGroup
	serving.Add(1)
	go func() {
		defer serving.Done()
		srv.Serve(lis)
	}()
	defer serving.Wait()
	defer srv.Stop()
	defer w.closeRing()
	// Health: SERVING until the worker drains or stops.
	stopWatch := make(chan struct{})
	var watching sync.WaitGroup
	watching.Add(1)
	go func() {
		defer watching.Done()
		select {
		case <-cfg.Drain:
			w.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		case <-stopWatch:
		}
	}()
	defer watching.Wait()
	defer close(stopWatch)

	if w.advert, err = advertiseAddr(cfg, lis.Addr()); err != nil {
		return err
	}
	err = w.bindMovable("gossip", cfg.GossipListen, cfg.Movable.Gossip, func(addr string) (err error) {
		w.node, err = membership.Start(membership.Config{Name: cfg.ID, Bind: addr, Advertise: cfg.GossipAdvertise,
			ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, SecretKey: cfg.Security.GossipKeyBytes(),
			Meta: membership.Meta{Role: membership.Worker, GRPC: w.advert, State: "joining"}, Logger: w.log})
		return err
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer func() {
		if w.released {
			w.node.Depart(time.Second)
		} else {
			w.node.Leave(time.Second)
		}
	}()
	w.log.Info("gossip listening", "addr", w.node.Addr())
	if len(cfg.Join) > 0 {
		if joined, err := w.joinGossip(ctx, cfg.Join); !joined {
			return err
		}
	}
	return w.serve(ctx)
}

// joinGossip joins the cluster through seeds, retrying until JoinTimeout.
// It returns false without error when the worker drains (SIGTERM) meanwhile.
func (w *worker) joinGossip(ctx context.Context, seeds []string) (bool, error) {
	deadline := time.Now().Add(w.cfg.JoinTimeout)
	var lastLog time.Time
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		_, err := w.node.Join(seeds)
		if err == nil {
			w.joined = true
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("worker: cannot join the gossip cluster through %s within %v (-join-timeout): %w", strings.Join(seeds, ","), w.cfg.JoinTimeout, err)
		}
		if time.Since(lastLog) >= 5*time.Second { // the first time, then every few seconds
			w.log.Info("waiting to join the gossip cluster through "+strings.Join(seeds, ",")+"; retrying", "err", err.Error(), "retry_in", backoff.String())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-w.cfg.Drain:
			w.log.Info("SIGTERM while joining the gossip cluster: leaving")
			return false, nil
		case <-time.After(backoff):
		}
	}
}

// serve runs sessions with the coordinator, reconnecting when it is lost:
// a worker waits for a coordinator for ReconnectTimeout after its start or
// after the last session that gave it work. A coordinator that answers its
// health checks but ends every session at once (a job that is ending turns
// joins away) is retried with a growing pause, which SIGTERM cuts short.
func (w *worker) serve(ctx context.Context) error {
	since, had := time.Now(), false
	var lastLog time.Time
	for backoff := time.Duration(0); ; {
		addr, err := w.awaitCoordinator(ctx, since, had)
		if err != nil || addr == "" {
			return err
		}
		assigned, err := w.session(ctx, addr)
		if assigned {
			since, had, backoff = time.Now(), true, 0
		}
		if !errors.Is(err, errCoordinatorLost) || ctx.Err() != nil {
			return err
		}
		w.closeRing()
		if !assigned {
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		}
		if had && time.Since(lastLog) >= 5*time.Second {
			w.log.Warn("lost the coordinator; reconnecting", "coordinator", addr, "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.cfg.Drain:
			w.log.Info("SIGTERM while reconnecting to the coordinator: leaving")
			return nil
		case <-time.After(backoff):
		}
	}
}

// awaitCoordinator waits until a coordinator answers: the configured one,
// or one the gossip cluster knows of. When the first try fails it says
// what it waits for and where, then reports its retries every few seconds, and returns "" without error when the worker drains
// (SIGTERM) meanwhile: a worker in no ring leaves at once. had tells whether
// a coordinator gave this worker work before (it was lost).
func (w *worker) awaitCoordinator(ctx context.Context, since time.Time, had bool) (string, error) {
	where := "at " + w.cfg.Coordinator
	if w.cfg.Coordinator == "" {
		where = "in the gossip cluster (seeds " + strings.Join(w.cfg.Join, ",") + ")"
	}
	var lastErr error
	var lastLog time.Time
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		addr, err := w.coordinatorAnswers(ctx)
		if err == nil {
			return addr, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if isHandshakeFailure(err) {
			// Retrying cannot help: the credentials do not match.
			return "", fmt.Errorf("worker: the TLS handshake with the coordinator at %s failed (do both use certificates of the same CA?): %v", addr, err)
		}
		lastErr = errors.New(statusMessage(err))
		if time.Since(since) > w.cfg.ReconnectTimeout {
			what := "no coordinator answered"
			if had {
				what = "the coordinator did not come back"
			}
			return "", fmt.Errorf("worker: %s %s within %v (-reconnect-timeout): %v", what, where, w.cfg.ReconnectTimeout, lastErr)
		}
		switch {
		case lastLog.IsZero():
			w.log.Info("waiting for the coordinator "+where+"; retrying", "err", lastErr.Error(), "retry_in", backoff.String(),
				"gives_up_after", (w.cfg.ReconnectTimeout - time.Since(since)).Round(time.Second).String())
			lastLog = time.Now()
		case time.Since(lastLog) >= 5*time.Second:
			w.log.Info("no coordinator "+where+" yet; retrying", "err", lastErr.Error(), "retry_in", backoff.String(),
				"waited", time.Since(since).Round(time.Second).String())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-w.cfg.Drain:
			w.log.Info("SIGTERM while waiting for the coordinator: leaving")
			return "", nil
		case <-time.After(backoff):
		}
		if w.cfg.Coordinator == "" && len(w.cfg.Join) > 0 {
			// The seeds again: workers that started before the coordinator
			// (pods, containers) joined each other only, and the coordinator
			// has no seeds of its own to find them with.
			if _, err := w.node.Join(w.cfg.Join); err != nil {
				w.log.Debug("seeds not all reachable yet", "err", err)
			}
		}
	}
}

// coordinatorAnswers finds the coordinator's address (the configured one,
// or the gossip cluster's) and asks its health service once.
func (w *worker) coordinatorAnswers(ctx context.Context) (string, error) {
	addr := w.cfg.Coordinator
	if addr == "" {
		for _, m := range w.node.Members() {
			if m.Meta.Role == membership.Coordinator && m.Meta.GRPC != "" {
				addr = m.Meta.GRPC
			}
		}
		if addr == "" {
			return "", errors.New("no coordinator among the gossip members")
		}
	}
	conn, err := grpc.NewClient(addr, w.cfg.Security.DialOptions()...)
	if err != nil {
		return addr, err
	}
	defer conn.Close()
	checkCtx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(checkCtx, &healthpb.HealthCheckRequest{})
	return addr, err
}

// statusMessage is an RPC error's message without its code and wrapping,
// which repeat themselves in logs.
func statusMessage(err error) string {
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
	}
	const dialing = `connection error: desc = "transport: Error while dialing: `
	if strings.HasPrefix(msg, dialing) {
		msg = strings.TrimSuffix(strings.TrimPrefix(msg, dialing), `"`)
	}
	return msg
}

// healthCheckTimeout bounds one health check of the coordinator.
const healthCheckTimeout = 2 * time.Second

// advertiseAddr is the address other workers dial to reach this one.
func advertiseAddr(cfg Config, listening net.Addr) (string, error) {
	if cfg.Advertise != "" {
		return cfg.Advertise, nil
	}
	tcp := listening.(*net.TCPAddr)
	if !tcp.IP.IsUnspecified() {
		return tcp.String(), nil
	}
	target := cfg.Coordinator
	if target == "" && len(cfg.Join) > 0 {
		target = cfg.Join[0]
		if _, _, err := net.SplitHostPort(target); err != nil {
			target = net.JoinHostPort(target, fmt.Sprint(membership.DefaultPort))
		}
	}
	// The address of the interface that routes to the coordinator; a UDP
	// "connection" sends nothing.
	c, err := net.Dial("udp", target)
	if err != nil {
		return "", fmt.Errorf("worker: cannot tell which address to advertise (set -advertise): %w", err)
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).IP
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port)), nil
}

// closeRing closes the current ring transport, if any.
func (w *worker) closeRing() {
	if w.transport != nil {
		w.transport.Close()
		w.transport = nil
	}
}
