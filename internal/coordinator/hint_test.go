package coordinator

import (
	"strings"
	"testing"
	"time"
)

// TestMissingLocalWorkersAreNamed: when a job of local workers has too few
// left, the error names the missing ones instead of asking whether they
// were started with -coordinator, in the first ring and in later ones.
func TestMissingLocalWorkersAreNamed(t *testing.T) {
	for _, gen := range []uint32{0, 2} {
		c := &coordinator{cfg: Config{LocalWorkers: 2, MinWorkers: 2}, registry: newRegistry(), addr: "127.0.0.1:1",
			local: &localWorkers{names: []string{"local-0", "local-1"}}}
		s := &supervisor{genSeq: gen, waitingSince: time.Now()}
		msg := c.tooFewWorkers(s).Error()
		if strings.Contains(msg, "-coordinator") || !strings.Contains(msg, "missing: local-0, local-1") {
			t.Errorf("ring %d: %q, want the missing local workers named", gen, msg)
		}
	}
}
