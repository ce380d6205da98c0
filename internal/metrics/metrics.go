// Package metrics exposes a process's training metrics in the Prometheus
// format at /metrics. Each process has its own registry (no global state):
// the coordinator's and the workers' metrics are distinct sets, all named
// ringtrain_*.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultPort is where the binaries serve /metrics unless told otherwise.
const DefaultPort = 9090

// Coordinator holds the coordinator's metrics.
type Coordinator struct {
	Registry          *prometheus.Registry
	Steps             prometheus.Counter
	SamplesPerSecond  prometheus.Gauge
	Loss              prometheus.Gauge
	TestAccuracy      prometheus.Gauge
	RingSize          prometheus.Gauge
	Rollbacks         prometheus.Counter
	MembershipChanges *prometheus.CounterVec
	RecoverySeconds   prometheus.Histogram
	SkippedSteps      prometheus.Counter
}

// NewCoordinator registers the coordinator's metrics in a new registry.
func NewCoordinator() *Coordinator {
	r := newRegistry()
	f := factory{r}
	return &Coordinator{
		Registry:         r,
		Steps:            f.counter("ringtrain_steps_total", "Synchronized training steps completed (rank 0's reports)."),
		SamplesPerSecond: f.gauge("ringtrain_samples_per_second", "Training throughput over the global batch, since rank 0's first step (start-up left out)."),
		Loss:             f.gauge("ringtrain_loss", "Training loss of the last step, over the global batch."),
		TestAccuracy:     f.gauge("ringtrain_test_accuracy", "Test accuracy at the last evaluation (epoch end)."),
		RingSize:         f.gauge("ringtrain_membership_size", "Workers in the current ring."),
		Rollbacks:        f.counter("ringtrain_rollbacks_total", "Rings that ended in a failure and rolled a step back."),
		MembershipChanges: f.counterVec("ringtrain_membership_changes_total", "Workers lost, joined or left during the job.",
			"kind"),
		RecoverySeconds: f.histogram("ringtrain_recovery_seconds", "Time from a ring's failure to the next completed step.",
			prometheus.ExponentialBuckets(0.05, 2, 10)),
		SkippedSteps: f.counter("ringtrain_skipped_steps_total", "Steps no replica applied because a gradient was not finite (-nonfinite skip)."),
	}
}

// Worker holds a worker's metrics.
type Worker struct {
	Registry         *prometheus.Registry
	Steps            prometheus.Counter
	Loss             prometheus.Gauge
	SamplesPerSecond prometheus.Gauge
	AllreduceSeconds prometheus.Histogram
	AllreduceBytes   prometheus.Counter
	RingSize         prometheus.Gauge
	Rollbacks        prometheus.Counter
	SkippedSteps     prometheus.Counter
	NonFiniteBatches prometheus.Counter
}

// NewWorker registers a worker's metrics in a new registry.
func NewWorker() *Worker {
	r := newRegistry()
	f := factory{r}
	return &Worker{
		Registry:         r,
		Steps:            f.counter("ringtrain_steps_total", "Synchronized training steps this worker applied."),
		Loss:             f.gauge("ringtrain_loss", "Training loss of the last step, over the global batch."),
		SamplesPerSecond: f.gauge("ringtrain_samples_per_second", "Samples of this worker's lanes per second of its last step."),
		AllreduceSeconds: f.histogram("ringtrain_allreduce_seconds", "Time of one gradient all-reduce.",
			prometheus.ExponentialBuckets(1e-5, 2, 22)),
		AllreduceBytes: f.counter("ringtrain_allreduce_bytes_total", "Bytes of gradient vectors all-reduced (the vector's size, per collective)."),
		RingSize:       f.gauge("ringtrain_membership_size", "Workers in this worker's current ring."),
		Rollbacks:      f.counter("ringtrain_rollbacks_total", "Steps this worker undid after a ring failed."),
		SkippedSteps:   f.counter("ringtrain_skipped_steps_total", "Steps no replica applied because a gradient was not finite (-nonfinite skip)."),
		NonFiniteBatches: f.counter("ringtrain_nonfinite_batches_total",
			"Steps whose gradient was not finite (NaN or ±Inf) on this worker's own batch."),
	}
}

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	// go_gc_heap_live_bytes (the heap the last collection kept) tells a
	// leak from the collector's headroom, which the resident set includes.
	live := collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}
	r.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(live)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}

// Server serves a registry at /metrics until Close.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

// Serve listens on addr and serves reg at /metrics.
func Serve(addr string, reg *prometheus.Registry) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: lis.Addr().String(), done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(lis) }()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() string { return s.addr }

// Close stops the server, waiting up to a second for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
