package coordinator

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"ringtrain/internal/metrics"
)

// TestDefaultMetricsPortMoves: the coordinator's default metrics port,
// taken by a worker started first on the machine, gives way to a free
// port; a port the user chose does not.
func TestDefaultMetricsPortMoves(t *testing.T) {
	hold, err := net.Listen("tcp", fmt.Sprintf(":%d", metrics.DefaultPort))
	if err == nil {
		defer hold.Close()
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Skipf("cannot take the default metrics port: %v", err)
	}
	c := &coordinator{cfg: Config{Cluster: Cluster{Workers: 2}}, metrics: metrics.NewCoordinator(), log: quiet}
	ms, err := c.serveMetrics(c.cfg.metricsAddr())
	if err != nil {
		t.Fatalf("default port taken: %v, want a free port", err)
	}
	defer ms.Close()
	if strings.HasSuffix(ms.Addr(), fmt.Sprintf(":%d", metrics.DefaultPort)) {
		t.Errorf("serving at %s, the taken port", ms.Addr())
	}
	c.cfg.MetricsListen = fmt.Sprintf(":%d", metrics.DefaultPort)
	if ms, err := c.serveMetrics(c.cfg.metricsAddr()); err == nil {
		ms.Close()
		t.Errorf("a taken port the user chose was moved to %s", ms.Addr())
	}
}
