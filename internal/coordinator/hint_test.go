package coordinator

import (
	"strings"
	"testing"

	"ringtrain/internal/control"
)

// TestMissingLocalWorkersAreNamed: when a job of local workers has too few
// left, the error names the missing ones instead of asking whether they
// were started with -coordinator; otherwise it says where they should
// join.
func TestMissingLocalWorkersAreNamed(t *testing.T) {
	few := &control.TooFewWorkers{Need: 2, Lost: []string{"local-1 at step 3 (gone)"}}
	c := &coordinator{cfg: Config{Cluster: Cluster{LocalWorkers: 2, MinWorkers: 2}}, addr: "127.0.0.1:1",
		local: &localWorkers{names: []string{"local-0", "local-1"}}}
	msg := c.tooFewWorkers(few).Error()
	if strings.Contains(msg, "-coordinator") || !strings.Contains(msg, "missing: local-0, local-1; lost: local-1 at step 3 (gone)") {
		t.Errorf("%q, want the missing local workers and the lost one named", msg)
	}
	c.local = nil
	few.Joined = []string{"w-0"}
	if msg := c.tooFewWorkers(few).Error(); !strings.Contains(msg, "waited 0s for 2 workers, 1 joined (w-0); missing 1 (are they started, with -coordinator 127.0.0.1:1?)") {
		t.Errorf("%q, want the address workers join", msg)
	}
}
