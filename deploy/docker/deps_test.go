package docker

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyListIsCurrent checks deps.txt, the packages outside the
// standard library and this module that the binary imports: the Dockerfile
// compiles them in a layer of its own, cached while go.mod, go.sum and the
// list stay the same. A stale list still builds, only slower (the packages
// missing from it compile with the project's code on every build).
func TestDependencyListIsCurrent(t *testing.T) {
	want, err := os.ReadFile("deps.txt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if and .Module (not .Module.Main)}}{{.ImportPath}}{{end}}", "ringtrain/cmd/coordinator")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Fields(string(out))
	slices.Sort(lines)
	if got := strings.Join(lines, "\n") + "\n"; got != string(want) {
		t.Errorf("deploy/docker/deps.txt is not current; remake it with\n" +
			"  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go list -deps -f '{{if and .Module (not .Module.Main)}}{{.ImportPath}}{{end}}' ./cmd/coordinator | LC_ALL=C sort > deploy/docker/deps.txt")
	}
}
