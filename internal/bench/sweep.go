package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// child is a helper process speaking the line protocol of RankMain and
// TCPSinkMain.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func startChild(ctx context.Context, exe string, args ...string) (*child, error) {
	c := &child{cmd: exec.CommandContext(ctx, exe, args...)}
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.stdout = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// line reads the child's next output line.
func (c *child) line() (string, error) {
	l, err := c.stdout.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %w (stderr: %s)", c.cmd.Args[1], err, strings.TrimSpace(c.stderr.String()))
	}
	return strings.TrimSpace(l), nil
}

// addr reads the "ADDR host:port" line.
func (c *child) addr() (string, error) {
	l, err := c.line()
	if err != nil {
		return "", err
	}
	a, ok := strings.CutPrefix(l, "ADDR ")
	if !ok {
		return "", fmt.Errorf("%s: expected ADDR, got %q", c.cmd.Args[1], l)
	}
	return a, nil
}

// finish closes the child's input and waits for it.
func (c *child) finish() error {
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w (stderr: %s)", c.cmd.Args[1], err, strings.TrimSpace(c.stderr.String()))
	}
	return nil
}

// runSweep times ringtrain's all-reduce on n processes for every size,
// over the named transport (tcp or grpc). With profileDir, rank 0 writes a
// CPU profile there.
func runSweep(ctx context.Context, exe, transport, kind, profileDir string, n int, sizes []int, iters, repeats int) ([]sweepResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var strs []string
	for _, s := range sizes {
		strs = append(strs, fmt.Sprint(s))
	}
	children := make([]*child, n)
	defer func() {
		for _, c := range children {
			if c != nil {
				c.cmd.Process.Kill()
				c.cmd.Wait()
			}
		}
	}()
	addrs := make([]string, n)
	for r := range children {
		args := []string{"allreduce-rank", "-rank", fmt.Sprint(r), "-transport", transport, "-kind", kind, "-sizes", strings.Join(strs, ","),
			"-iters", fmt.Sprint(iters), "-repeats", fmt.Sprint(repeats)}
		if r == 0 && profileDir != "" {
			name := transport
			if kind != "float64" {
				name += "-" + kind
			}
			args = append(args, "-cpuprofile", filepath.Join(profileDir, fmt.Sprintf("allreduce-%s-n%d-rank0.prof", name, n)))
		}
		c, err := startChild(ctx, exe, args...)
		if err != nil {
			return nil, err
		}
		children[r] = c
		if addrs[r], err = c.addr(); err != nil {
			return nil, err
		}
	}
	for _, c := range children {
		fmt.Fprintf(c.stdin, "ADDRS %s\n", strings.Join(addrs, ","))
	}
	var results []sweepResult
	for r, c := range children {
		for {
			l, err := c.line()
			if err != nil {
				return nil, err
			}
			if l == "DONE" {
				break
			}
			if r == 0 {
				var res sweepResult
				if err := json.Unmarshal([]byte(l), &res); err != nil {
					return nil, fmt.Errorf("rank 0 printed %q: %w", l, err)
				}
				results = append(results, res)
			}
		}
	}
	for r, c := range children {
		if err := c.finish(); err != nil {
			return nil, err
		}
		children[r] = nil
	}
	return results, nil
}

// tcpCeiling measures one loopback TCP stream between two processes:
// bytes per second written through it.
func tcpCeiling(ctx context.Context, exe string, total int) (float64, error) {
	c, err := startChild(ctx, exe, "tcp-sink")
	if err != nil {
		return 0, err
	}
	defer func() { c.cmd.Process.Kill(); c.cmd.Wait() }()
	addr, err := c.addr()
	if err != nil {
		return 0, err
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := conn.Write(buf); err != nil {
			conn.Close()
			return 0, err
		}
	}
	conn.Close()
	if _, err := c.line(); err != nil { // the sink has read everything
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// memcpyCeiling measures copying between two 64 MiB buffers in memory.
func memcpyCeiling(total int) float64 {
	src, dst := make([]byte, 64<<20), make([]byte, 64<<20)
	copy(dst, src) // fault the pages in
	start := time.Now()
	for done := 0; done < total; done += len(src) {
		copy(dst, src)
	}
	return float64(total) / time.Since(start).Seconds()
}
