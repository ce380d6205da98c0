package coordinator

import (
	"strings"
	"testing"

	"ringtrain/internal/worker"
)

// TestCompressionConfig accepts the three compressions (and the empty
// string, as none) and refuses an unknown one and any compression with
// -deterministic, naming why.
func TestCompressionConfig(t *testing.T) {
	for _, c := range []struct {
		compression   string
		deterministic bool
		want          string // "" accepts
	}{
		{"", false, ""},
		{CompressionNone, false, ""},
		{CompressionFP16, false, ""},
		{CompressionBF16, false, ""},
		{CompressionNone, true, ""},
		{"fp8", false, `compression "fp8": want "none", "fp16" or "bf16"`},
		{CompressionFP16, true, "-compression fp16 cannot be combined with -deterministic"},
		{CompressionBF16, true, "-compression bf16 cannot be combined with -deterministic"},
	} {
		cfg := DefaultConfig()
		cfg.LocalWorkers, cfg.Compression, cfg.Deterministic = 2, c.compression, c.deterministic
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("compression %q, deterministic %v: %v", c.compression, c.deterministic, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("compression %q, deterministic %v: error %v, want one saying %q", c.compression, c.deterministic, err, c.want)
		}
	}
}

// TestCompressedJob trains 30 steps on 3 in-process workers over each data
// plane (ringtcp, and gRPC) with the gradient in float16 and bfloat16,
// comparing the replicas' weights after every step: the job completes,
// every comparison passes, and the summary says how the gradients
// travelled.
func TestCompressedJob(t *testing.T) {
	t.Parallel() // its jobs mostly wait on gRPC, gossip and the other goroutines
	const steps = 30
	for _, c := range []struct{ compression, plane string }{{CompressionFP16, "tcp"}, {CompressionBF16, "grpc"}} {
		t.Run(c.compression+"/"+c.plane, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, 3)
			cfg.MaxSteps, cfg.HashEvery, cfg.Batch, cfg.Compression = steps, 1, 16, c.compression
			sum, err, werrs := runJobWith(t, cfg, func(wc *worker.Config) { wc.DataPlane = c.plane }, workerIDs(3)...)
			if err != nil {
				t.Fatal(err)
			}
			for i, err := range werrs {
				if err != nil {
					t.Fatalf("worker %d: %v", i, err)
				}
			}
			if sum.Status != "completed" || sum.StepsDone != steps || sum.ReplicaChecks != steps || sum.Compression != c.compression {
				t.Fatalf("status %q, %d steps done, %d replica checks, compression %q; want completed, %d, %d, %q",
					sum.Status, sum.StepsDone, sum.ReplicaChecks, sum.Compression, steps, steps, c.compression)
			}
		})
	}
}
