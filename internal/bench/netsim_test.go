package bench

import (
	"slices"
	"testing"
)

func TestNetsimWorkerCommand(t *testing.T) {
	args := []string{"-coordinator", "10.213.0.254:7000", "-listen", "127.0.0.1:0", "-id", "local-1",
		"-join", "10.213.0.254:7946", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0"}
	got, err := netsimWorkerCommand("ns-0=10.213.0.1,ns-1=10.213.0.2", "/bin/ringbench", args)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ip", "netns", "exec", "ns-1", "/bin/ringbench", "worker", "-coordinator", "10.213.0.254:7000",
		"-listen", "10.213.0.2:0", "-id", "local-1", "-join", "10.213.0.254:7946", "-gossip-listen", "10.213.0.2:0",
		"-metrics-listen", "127.0.0.1:0"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for _, bad := range [][]string{{"-id", "local-2"}, {"-id", "w"}, {"-listen", "x"}} {
		if _, err := netsimWorkerCommand("ns-0=10.213.0.1,ns-1=10.213.0.2", "x", bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
