// Package netsim builds a simulated cluster network on one machine: N
// network namespaces, each joined by a veth pair to a bridge that lives in
// a namespace of its own, with every node's link shaped by tc netem (rate
// and one-way delay). Nothing touches the host's own network: the bridge,
// its addresses and every socket a test opens live in the namespaces, and
// only their addresses are ever targeted.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's ip and tc;
// Check says why it cannot run.
package netsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Config describes a simulated network. DefaultConfig gives the defaults.
type Config struct {
	// Nodes is the number of namespaces, at least 1.
	Nodes int
	// RateBits is each node's link rate in bits per second (it shapes
	// what the node sends); zero leaves the links unshaped.
	RateBits int64
	// Delay is the one-way delay a node's packets take on its link. It
	// needs the kernel's netem qdisc (ErrNoNetem otherwise).
	Delay time.Duration
	// Prefix names the namespaces (Prefix-sw, Prefix-0, ...); default
	// "rtsim" and the process id, so that concurrent runs do not collide.
	Prefix string
	// Subnet is the first three octets of the nodes' /24: node i is
	// Subnet.(i+1), the bridge Subnet.254. Default "10.213.0".
	Subnet string
}

// DefaultConfig is two nodes on 1 Gb/s links with 0.2 ms one-way delay.
func DefaultConfig() Config {
	return Config{Nodes: 2, RateBits: 1e9, Delay: 200 * time.Microsecond}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > 250:
		return fmt.Errorf("netsim: %d nodes: want 1 to 250", c.Nodes)
	case c.RateBits < 0 || c.Delay < 0:
		return errors.New("netsim: rate and delay must not be negative")
	case len(c.Prefix) > 20:
		return fmt.Errorf("netsim: prefix %q longer than 20 characters", c.Prefix)
	}
	return nil
}

// Net is a built network. Close tears it down.
type Net struct {
	cfg Config
	// Switch is the namespace of the bridge; SwitchIP its address there.
	Switch, SwitchIP string
	// Nodes are the nodes' namespaces and addresses, by index.
	Nodes []Node
	made  []string // namespaces created, in order
}

// Node is one simulated machine.
type Node struct {
	NS, IP string
}

// Check reports why this process cannot build networks, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netsim: needs root (network namespaces, veth pairs, tc); run as root to include the simulated network")
	}
	if err := checkCaps(); err != nil {
		return err
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netsim: %s not found (install iproute2): %w", tool, err)
		}
	}
	return nil
}

// Build creates the network cfg describes. On failure everything it
// created is removed again.
func Build(ctx context.Context, cfg Config) (*Net, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("rtsim%d", os.Getpid())
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "10.213.0"
	}
	n := &Net{cfg: cfg, Switch: cfg.Prefix + "-sw", SwitchIP: cfg.Subnet + ".254"}
	if err := n.build(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// build makes the namespaces, the bridge and the links.
func (n *Net) build(ctx context.Context) error {
	cfg := n.cfg
	sw := n.Switch
	if err := n.addNS(ctx, sw); err != nil {
		return err
	}
	steps := [][]string{
		{"ip", "-n", sw, "link", "set", "lo", "up"},
		{"ip", "-n", sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", sw, "addr", "add", n.SwitchIP + "/24", "dev", "br0"},
		{"ip", "-n", sw, "link", "set", "br0", "up"},
	}
	if err := run(ctx, steps...); err != nil {
		return err
	}
	for i := 0; i < cfg.Nodes; i++ {
		node := Node{NS: fmt.Sprintf("%s-%d", cfg.Prefix, i), IP: fmt.Sprintf("%s.%d", cfg.Subnet, i+1)}
		if err := n.addNS(ctx, node.NS); err != nil {
			return err
		}
		port := fmt.Sprintf("p%d", i)
		steps := [][]string{
			{"ip", "-n", node.NS, "link", "set", "lo", "up"},
			{"ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", node.NS},
			{"ip", "-n", sw, "link", "set", port, "master", "br0", "up"},
			{"ip", "-n", node.NS, "addr", "add", node.IP + "/24", "dev", "eth0"},
			{"ip", "-n", node.NS, "link", "set", "eth0", "up"},
		}
		if err := run(ctx, steps...); err != nil {
			return err
		}
		if q := shaper(cfg); q != nil {
			err := run(ctx, append([]string{"tc", "-n", node.NS, "qdisc", "add", "dev", "eth0", "root"}, q...))
			if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
				if q[0] == "netem" {
					return fmt.Errorf("%w: %w", ErrNoNetem, err)
				}
				return fmt.Errorf("%w: %w", ErrNoShaper, err)
			}
			if err != nil {
				return err
			}
		}
		n.Nodes = append(n.Nodes, node)
	}
	return nil
}

// ErrNoNetem is wrapped by the error of a network with a delay on a
// kernel built without the netem qdisc (CONFIG_NET_SCH_NETEM): rates can
// still be shaped (tbf), delays cannot.
var ErrNoNetem = errors.New("netsim: this kernel has no netem qdisc, so it cannot delay packets")

// ErrNoShaper is wrapped by the error of a shaped network on a kernel
// without the token bucket qdisc (CONFIG_NET_SCH_TBF).
var ErrNoShaper = errors.New("netsim: this kernel has no tbf qdisc, so it cannot shape a link's rate")

// checkCaps reports whether this process lacks the capabilities that
// namespaces and links need: root in a container often does.
func checkCaps() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("netsim: cannot read this process's capabilities: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("netsim: capabilities %q: %w", hex, err)
		}
		const netAdmin, sysAdmin = 12, 21
		if caps&(1<<netAdmin) == 0 || caps&(1<<sysAdmin) == 0 {
			return errors.New("netsim: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (a container must run privileged, or with both added)")
		}
		return nil
	}
	return nil
}

// shaper is the qdisc that shapes a node's link, or nil: netem for a delay
// (with the rate, if any), else a token bucket for the rate alone.
func shaper(cfg Config) []string {
	switch {
	case cfg.Delay > 0:
		q := []string{"netem", "delay", fmt.Sprintf("%dus", cfg.Delay.Microseconds())}
		if cfg.RateBits > 0 {
			q = append(q, "rate", fmt.Sprintf("%dbit", cfg.RateBits))
		}
		// Room for the bandwidth-delay product many times over: a
		// shaped link queues, it does not drop.
		return append(q, "limit", "100000")
	case cfg.RateBits > 0:
		// A bucket of a millisecond's worth of bytes, and at least four
		// 64 KiB segments (veth hands over GSO segments whole); a queue
		// of 50 ms.
		bytesPerSec := cfg.RateBits / 8
		burst := max(bytesPerSec/1000, 256<<10)
		limit := max(bytesPerSec/20, 4<<20)
		return []string{"tbf", "rate", fmt.Sprintf("%dbit", cfg.RateBits), "burst", fmt.Sprint(burst), "limit", fmt.Sprint(limit)}
	}
	return nil
}

func (n *Net) addNS(ctx context.Context, name string) error {
	if err := run(ctx, []string{"ip", "netns", "add", name}); err != nil {
		return err
	}
	n.made = append(n.made, name)
	return nil
}

// Command returns a command that runs name with args inside node i's
// namespace.
func (n *Net) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return n.CommandIn(ctx, n.Nodes[i].NS, name, args...)
}

// CommandIn returns a command that runs name with args inside namespace
// ns (a node's or the switch's).
func (n *Net) CommandIn(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Close deletes every namespace the network made, and with them the veth
// pairs, the bridge and the qdiscs. It may be called more than once.
func (n *Net) Close() error {
	var errs []error
	for i := len(n.made) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := run(ctx, []string{"ip", "netns", "del", n.made[i]}); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	n.made = nil
	return errors.Join(errs...)
}

// run runs each command in turn and stops at the first that fails.
func run(ctx context.Context, cmds ...[]string) error {
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("netsim: %s: %w: %s", strings.Join(c, " "), err, strings.TrimSpace(out.String()))
		}
	}
	return nil
}
