package ringtrainpb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code into a temporary folder
// and compares it with the committed files. It is skipped where the pinned
// protoc is not installed (.ci/run installs it).
func TestGeneratedCodeIsCurrent(t *testing.T) {
	out, err := exec.Command("protoc", "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "libprotoc 3.21.12" {
		t.Skipf("protoc 3.21.12 not installed (found %q, %v): cannot check the generated code; install Debian's protobuf-compiler to run this check", strings.TrimSpace(string(out)), err)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "generate.sh")
	cmd.Env = append(os.Environ(), "OUT="+dir)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, msg)
	}
	for _, name := range []string{"ringtrain.pb.go", "ringtrain_grpc.pb.go"} {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale: run `go generate ./proto` and commit the result", name)
		}
	}
}
