package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeExposesNamedMetrics(t *testing.T) {
	m := NewWorker()
	m.Steps.Add(3)
	m.AllreduceSeconds.Observe(0.001)
	m.AllreduceBytes.Add(64 << 10)
	srv, err := Serve("127.0.0.1:0", m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"ringtrain_steps_total 3", "ringtrain_allreduce_seconds_bucket", "ringtrain_allreduce_bytes_total 65536",
		"ringtrain_membership_size", "ringtrain_rollbacks_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if c := NewCoordinator(); c.Registry == m.Registry {
		t.Fatal("the coordinator and a worker share a registry")
	}
}
