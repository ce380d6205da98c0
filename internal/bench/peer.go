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

// peerProbe prints PyTorch's version, then the BLAS library it mapped for
// a matrix product (bench/peer.py reads it the same way).
const peerProbe = `import os, torch, torch.distributed as d
assert d.is_gloo_available()
print(torch.__version__)
torch.ones(64, 64) @ torch.ones(64, 64)
libs = []
for line in open("/proc/self/maps"):
    p = line.split()[-1]
    n = os.path.basename(p)
    if any(s in n for s in ("blas", "mkl", "blis")) and os.path.realpath(p) not in libs:
        libs.append(os.path.realpath(p))
print(" ".join(libs) or "none mapped")`

// findPeer returns a Python interpreter that can import PyTorch with the
// gloo backend, and a line describing it (with the BLAS library it maps),
// or "" and why the peer is skipped.
func findPeer(peer string) (python, note string) {
	if peer == "off" {
		return "", "disabled (-peer off)"
	}
	candidates := []string{"python3", "/usr/bin/python3"}
	if peer != "auto" && peer != "" {
		candidates = []string{peer}
	}
	var tried []string
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, py, "-c", peerProbe).Output()
		cancel()
		if err == nil {
			version, blas, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			return py, fmt.Sprintf("PyTorch %s with gloo (%s), %s", version, py, blasNote(blas, isReferenceBLAS(blas)))
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

// isReferenceBLAS says whether libs (paths, space-separated) include a
// libblas.so that is not an optimised library's: netlib's reference BLAS,
// which libtorch calls first when libblas.so.3 points at it.
func isReferenceBLAS(libs string) bool {
	for _, p := range strings.Fields(libs) {
		if strings.HasPrefix(filepath.Base(p), "libblas.so") &&
			!strings.Contains(p, "openblas") && !strings.Contains(p, "blis") && !strings.Contains(p, "mkl") {
			return true
		}
	}
	return false
}

// blasNote describes the peer's BLAS for a report, in bold when it is the
// reference one.
func blasNote(libs string, reference bool) string {
	if reference {
		return "**BLAS: reference (netlib), " + libs + ": the peer's slowest configuration; install libopenblas0-pthread**"
	}
	return "BLAS: " + libs
}

// peerRowNote is the note of a peer's result row: the BLAS it mapped,
// then note.
func peerRowNote(m map[string]any, note string) string {
	libs, _ := m["blas"].(string)
	if libs == "" {
		return note
	}
	ref, _ := m["reference_blas"].(bool)
	return strings.TrimSuffix(blasNote(libs, ref)+"; "+note, "; ")
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
