package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// findPeer returns a Python interpreter that can import PyTorch with the
// gloo backend, and a line describing it, or "" and why the peer is skipped.
func findPeer(peer string) (python, note string) {
	if peer == "off" {
		return "", "disabled (-peer off)"
	}
	candidates := []string{"python3", "/usr/bin/python3"}
	if peer != "auto" && peer != "" {
		candidates = []string{peer}
	}
	const probe = "import torch, torch.distributed as d; assert d.is_gloo_available(); print(torch.__version__)"
	var tried []string
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, py, "-c", probe).Output()
		cancel()
		if err == nil {
			return py, fmt.Sprintf("PyTorch %s with gloo (%s)", strings.TrimSpace(string(out)), py)
		}
		tried = append(tried, py)
	}
	return "", fmt.Sprintf("PyTorch with gloo not importable by %s (apt-get install python3-torch)", strings.Join(tried, " or "))
}

// runPeer runs one of the peer scripts and decodes every JSON line it
// prints into a map.
func (r *runner) runPeer(ctx context.Context, script string, args ...string) ([]map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.python, append([]string{filepath.Join(r.cfg.Scripts, script)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", script, strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	var res []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s printed %q: %w", script, sc.Text(), err)
		}
		res = append(res, m)
	}
	return res, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// num reads a number from a peer result.
func num(m map[string]any, key string) float64 {
	v, _ := m[key].(float64)
	return v
}
