package bench

import (
	"encoding/json"
	"io"
	"slices"
	"testing"

	"ringtrain/internal/coordinator"
)

func TestNetsimWorkerCommand(t *testing.T) {
	args := []string{"-coordinator", "10.213.0.254:7000", "-listen", "127.0.0.1:0", "-id", "local-1",
		"-join", "10.213.0.254:7946", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0"}
	got, err := netsimWorkerCommand("ns-0=10.213.0.1,ns-1=10.213.0.2", "/bin/ringbench", args)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ip", "netns", "exec", "ns-1", "/bin/ringbench", "worker", "-shared-memory=false", "-coordinator", "10.213.0.254:7000",
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

// TestNetsimTrainVariants: a run without overlap asks for no buckets and
// the default run for the coordinator's default; each variant's record
// carries its own Impl, so the overlap suite's tables and the cost model's
// fit tell them apart.
func TestNetsimTrainVariants(t *testing.T) {
	r := &runner{cpus: 2, out: json.NewEncoder(io.Discard)}
	sum := &coordinator.Summary{Steps: 10}
	for _, c := range []struct {
		tr     trainRun
		bucket int
		impl   string
	}{
		{trainRun{noOverlap: true}, 0, "ringtrain-nooverlap"},
		{trainRun{}, coordinator.DefaultBucketBytes, "ringtrain"},
		{trainRun{compression: "fp16"}, coordinator.DefaultBucketBytes, "ringtrain-fp16"},
		{trainRun{noOverlap: true, compression: "bf16"}, 0, "ringtrain-nooverlap-bf16"},
	} {
		c.tr.model, c.tr.workers, c.tr.suite = mlp512, 4, "netsim-overlap"
		if got := c.tr.bucketBytes(); got != c.bucket {
			t.Errorf("%+v: bucket bytes %d, want %d", c.tr, got, c.bucket)
		}
		if err := r.addNetsimTrain(c.tr, 1e9, sum); err != nil {
			t.Fatal(err)
		}
		if got := r.records[len(r.records)-1]; got.Impl != c.impl || got.Suite != "netsim-overlap" || got.LinkBits != 1e9 {
			t.Errorf("%+v: record %s/%s at %d b/s, want netsim-overlap/%s at 1e9", c.tr, got.Suite, got.Impl, got.LinkBits, c.impl)
		}
	}
}

// TestGradientBytes counts every model's float32 parameters: the CNN's
// convolutions (320 and 18,496), Dense(128) on 5×5×64 and Dense(10).
func TestGradientBytes(t *testing.T) {
	for model, params := range map[string]float64{"keras": 8070, "mlp512": 669706, "cnn": 320 + 18496 + 204928 + 1290, "other": 0} {
		if got := gradientBytes(model); got != 4*params {
			t.Errorf("%s: %g bytes, want %g", model, got, 4*params)
		}
	}
}
