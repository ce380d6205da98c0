// Package membership is a job's view of who is alive, kept by gossip with
// github.com/hashicorp/memberlist: the coordinator and every worker run a
// Node, workers join through seed addresses (a flag, an environment
// variable, or a DNS name that resolves to several addresses, as a
// Kubernetes headless service does), and every node learns joins, graceful
// leaves and failures from the others' probes.
package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Role says what a node does in a job.
type Role string

// The roles.
const (
	Coordinator Role = "coordinator"
	Worker      Role = "worker"
)

// Meta is what a node tells the cluster about itself. It travels as JSON in
// memberlist's node metadata, which holds at most 512 bytes.
type Meta struct {
	Role Role `json:"role"`
	// GRPC is the coordinator's gRPC address, or a worker's ring address.
	GRPC string `json:"grpc,omitempty"`
	// State is free-form: "joining", "training", "leaving".
	State string `json:"state,omitempty"`
}

// Leaving is the State of a node on its way out.
const Leaving = "leaving"

// DefaultPort is memberlist's port, used for seeds given without one.
const DefaultPort = 7946

// Config configures a Node. DefaultConfig suits a LAN.
type Config struct {
	// Name identifies the node in the cluster; it must be unique (a
	// worker's id).
	Name string
	// Bind is where the node listens for gossip (UDP and TCP), host:port;
	// port 0 picks a free one.
	Bind string
	// Advertise, when set, is the host:port other nodes use to reach this
	// one.
	Advertise string
	// ProbeInterval is how often a random member is probed;
	// ProbeTimeout how long a probe may take before indirect probes start.
	// A member that stops answering is declared dead after a suspicion
	// period of a few probe intervals.
	ProbeInterval, ProbeTimeout time.Duration
	// SecretKey, when set (16, 24 or 32 bytes), encrypts all gossip.
	SecretKey []byte
	Meta      Meta
	Logger    *slog.Logger
	// Transport, when set, replaces the network (tests use memberlist's
	// MockNetwork).
	Transport memberlist.Transport
}

// DefaultConfig probes a member every second with a 500 ms timeout,
// memberlist's LAN defaults: a dead member is declared so after about
// five seconds.
func DefaultConfig() Config {
	return Config{Bind: ":" + strconv.Itoa(DefaultPort), ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond}
}

// EventKind is what happened to a member.
type EventKind int

// The events.
const (
	Joined EventKind = iota
	Updated
	Left   // left in good order
	Failed // stopped answering probes
)

func (k EventKind) String() string {
	return [...]string{"joined", "updated", "left", "failed"}[k]
}

// Event is a change in membership.
type Event struct {
	Kind EventKind
	Name string
	Addr string
	Meta Meta
}

// Member is a node currently alive.
type Member struct {
	Name string
	Addr string
	Meta Meta
}

// Node is this process's membership in the cluster.
type Node struct {
	ml     *memberlist.Memberlist
	log    *slog.Logger
	events chan Event

	mu   sync.Mutex
	meta Meta
	// alive is the membership as the events told it. memberlist's own
	// Members returns pointers that its goroutines keep writing to, so
	// the node keeps this copy, taken inside the callbacks.
	alive map[string]Member
}

// eventBuffer is how many events may wait for the owner before new ones
// are dropped (and logged): memberlist must never block on a slow owner.
const eventBuffer = 1024

// Start creates the node and listens for gossip. It does not join anyone:
// call Join with the seeds.
func Start(cfg Config) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("membership: a node name is required")
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	n := &Node{log: lg, events: make(chan Event, eventBuffer), meta: cfg.Meta, alive: map[string]Member{}}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("membership: bind %q: %w", cfg.Bind, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("membership: advertise %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	mc.SecretKey = cfg.SecretKey
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Logger = log.New(io.Discard, "", 0)
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	n.ml = ml
	return n, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Join contacts the seeds (host:port, or a host name whose every address
// is tried, with DefaultPort when no port is given) and returns how many
// answered.
func (n *Node) Join(seeds []string) (int, error) {
	var addrs []string
	for _, s := range seeds {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(s, strconv.Itoa(DefaultPort))
		}
		addrs = append(addrs, s)
	}
	if len(addrs) == 0 {
		return 0, errors.New("membership: no seed addresses")
	}
	k, err := n.ml.Join(addrs)
	if err != nil {
		return k, fmt.Errorf("membership: join %s: %w", strings.Join(addrs, ", "), oneLine{err})
	}
	return k, nil
}

// oneLine shows memberlist's multi-errors ("1 error occurred:\n\t* ...")
// on one line, each error after the other, for log lines that stay whole.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	var multi interface{ WrappedErrors() []error }
	if !errors.As(e.err, &multi) {
		return e.err.Error()
	}
	var parts []string
	for _, w := range multi.WrappedErrors() {
		parts = append(parts, w.Error())
	}
	return strings.Join(parts, "; ")
}

func (e oneLine) Unwrap() error { return e.err }

// Events delivers membership changes. The owner must read it promptly.
func (n *Node) Events() <-chan Event { return n.events }

// Addr is the host:port other nodes reach this one at.
func (n *Node) Addr() string {
	ln := n.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
}

// Members lists the nodes alive now, this one included, in name order.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Member, 0, len(n.alive))
	for _, m := range n.alive {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SetMeta replaces the node's metadata and tells the cluster.
func (n *Node) SetMeta(m Meta) error {
	n.mu.Lock()
	n.meta = m
	n.mu.Unlock()
	return n.ml.UpdateNode(time.Second)
}

// SetState changes the node's advertised state.
func (n *Node) SetState(state string) error {
	n.mu.Lock()
	n.meta.State = state
	n.mu.Unlock()
	return n.ml.UpdateNode(time.Second)
}

// Leave announces a graceful departure and stops the node. The node first
// advertises the state "leaving", by which the others tell its departure
// from a failure (memberlist's own leave notice does not say which).
func (n *Node) Leave(timeout time.Duration) error {
	_ = n.SetState(Leaving)
	err := n.ml.Leave(timeout)
	if serr := n.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Depart is Leave without the "leaving" state: it announces memberlist's
// leave and stops, sparing the gossip round (about 0.4 s with two or more
// others, which held the end of every job) that lets the others tell a
// departure from a failure. It is for a node whose departure no one
// classifies: a worker the coordinator has released (and forgotten).
func (n *Node) Depart(timeout time.Duration) error {
	err := n.ml.Leave(timeout)
	if serr := n.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops the node without announcing anything; the others will
// find it dead.
func (n *Node) Shutdown() error { return n.ml.Shutdown() }

func decodeMeta(b []byte) Meta {
	var m Meta
	_ = json.Unmarshal(b, &m) // a node without metadata has the zero Meta
	return m
}

// delegate serves the node's metadata to memberlist.
type delegate Node

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.meta)
	if len(b) > limit {
		d.log.Error("membership: node metadata too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events turns memberlist's callbacks into Events.
type events Node

func (e *events) send(kind EventKind, node *memberlist.Node) {
	// memberlist holds its lock during the callback: node is read here
	// and nowhere else.
	ev := Event{Kind: kind, Name: node.Name, Addr: node.Address(), Meta: decodeMeta(node.Meta)}
	e.mu.Lock()
	if kind == Joined || kind == Updated {
		e.alive[ev.Name] = Member{Name: ev.Name, Addr: ev.Addr, Meta: ev.Meta}
	} else {
		delete(e.alive, ev.Name)
	}
	e.mu.Unlock()
	select {
	case e.events <- ev:
	default:
		e.log.Error("membership: event dropped, the owner is not reading", "event", kind, "node", node.Name)
	}
}

func (e *events) NotifyJoin(node *memberlist.Node)   { e.send(Joined, node) }
func (e *events) NotifyUpdate(node *memberlist.Node) { e.send(Updated, node) }
func (e *events) NotifyLeave(node *memberlist.Node) {
	if node.State == memberlist.StateLeft || decodeMeta(node.Meta).State == Leaving {
		e.send(Left, node)
		return
	}
	e.send(Failed, node)
}
