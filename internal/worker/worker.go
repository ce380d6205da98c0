package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ringtrain/internal/membership"
	"ringtrain/internal/metrics"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/rpc"
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
	health  *health.Server
	node    *membership.Node
	advert  string // the ring address others dial
	joined  bool   // the gossip node has joined the cluster

	metrics *metrics.Worker
	replica *replica
	// transport is the current ring, if any; it is closed when the next
	// instruction arrives (every member has finished with it by then).
	transport *ringrpc.Transport
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
	if cfg.MetricsListen != "" {
		ms, err := metrics.Serve(cfg.MetricsListen, w.metrics.Registry)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		defer ms.Close()
		w.log.Info("serving metrics", "addr", ms.Addr())
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("worker: listen: %w", err)
	}
	w.log.Info("ring service listening", "addr", lis.Addr().String())
	srv := grpc.NewServer(w.cfg.Security.ServerOptions()...)
	w.ringSvc = ringrpc.NewService(cfg.JoinTimeout)
	pb.RegisterRingServer(srv, w.ringSvc)
	w.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, w.health)
	if cfg.HealthListen != "" {
		stop, err := rpc.ServeHealth(cfg.HealthListen, w.health)
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
	w.node, err = membership.Start(membership.Config{Name: cfg.ID, Bind: cfg.GossipListen, Advertise: cfg.GossipAdvertise,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, SecretKey: cfg.Security.GossipKeyBytes(),
		Meta: membership.Meta{Role: membership.Worker, GRPC: w.advert, State: "joining"}, Logger: w.log})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer w.node.Leave(time.Second)
	if len(cfg.Join) > 0 {
		if err := w.joinGossip(ctx, cfg.Join); err != nil {
			return err
		}
	}
	return w.serve(ctx)
}

// joinGossip joins the cluster through seeds, retrying until JoinTimeout.
func (w *worker) joinGossip(ctx context.Context, seeds []string) error {
	deadline := time.Now().Add(w.cfg.JoinTimeout)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		_, err := w.node.Join(seeds)
		if err == nil {
			w.joined = true
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker: %w", err)
		}
		w.log.Warn("cannot join the gossip cluster yet", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// serve runs sessions with the coordinator, reconnecting when it is lost:
// a worker keeps trying for ReconnectTimeout after the last session that
// gave it work.
func (w *worker) serve(ctx context.Context) error {
	lostAt := time.Now()
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		addr, err := w.coordinatorAddr(ctx)
		if err == nil {
			var assigned bool
			assigned, err = w.session(ctx, addr)
			if assigned {
				lostAt, backoff = time.Now(), 100*time.Millisecond
			}
		}
		if !errors.Is(err, errCoordinatorLost) {
			return err
		}
		w.closeRing()
		if time.Since(lostAt) > w.cfg.ReconnectTimeout {
			return fmt.Errorf("worker %s: %w; no coordinator answered within %v", w.cfg.ID, err, w.cfg.ReconnectTimeout)
		}
		w.log.Warn("no coordinator; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.cfg.Drain:
			return nil
		case <-time.After(backoff):
		}
	}
}

// coordinatorAddr is the configured coordinator, or the one the gossip
// cluster knows of.
func (w *worker) coordinatorAddr(ctx context.Context) (string, error) {
	if w.cfg.Coordinator != "" {
		return w.cfg.Coordinator, nil
	}
	deadline := time.Now().Add(w.cfg.JoinTimeout)
	for {
		for _, m := range w.node.Members() {
			if m.Meta.Role == membership.Coordinator && m.Meta.GRPC != "" {
				return m.Meta.GRPC, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("worker: no coordinator in the gossip cluster within %v: %w", w.cfg.JoinTimeout, errCoordinatorLost)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

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
