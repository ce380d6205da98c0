package coordinator

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringtrain/internal/modelfile"
	"ringtrain/internal/nn"
	"ringtrain/internal/sysmem"
)

// deepModel writes a model of n activation layers between MNIST's input
// and a softmax layer (46 KB for 1,000): few parameters, much memory per
// sample.
func deepModel(t *testing.T, n int) string {
	t.Helper()
	layers := strings.Repeat(`{"type": "activation", "activation": "relu"},`, n)
	path := filepath.Join(t.TempDir(), "deep.json")
	if err := writeFile(path, `{"input_shape": [784], "layers": [`+layers+`{"type": "dense", "units": 10, "activation": "softmax"}],
		"loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`); err != nil {
		t.Fatal(err)
	}
	return path
}

// refusedBeforeTraining runs cfg, which must be refused before any worker
// starts, and returns the error.
func refusedBeforeTraining(t *testing.T, cfg Config) error {
	t.Helper()
	launched := false
	cfg.Launcher = fakeLauncher(func(LocalWorkers) { launched = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Run(ctx, cfg)
	if err == nil {
		t.Fatal("the job ran")
	}
	if launched {
		t.Error("refused only after starting workers")
	}
	return err
}

// TestMemoryBoundRefusesADeepModelBeforeTraining: 1,000 activation layers
// trained by 4 local workers at batch 32 need about 2.4 GiB of activations;
// under a 1 GiB bound the job is refused before any worker starts, with the
// estimate, the bound and where the bound comes from.
func TestMemoryBoundRefusesADeepModelBeforeTraining(t *testing.T) {
	cfg := testConfig(t, 0)
	cfg.Workers, cfg.LocalWorkers, cfg.MemoryLimit = 0, 4, 1<<30
	setModel(t, &cfg, deepModel(t, 1000))
	err := refusedBeforeTraining(t, cfg)
	for _, want := range []string{"needs about", "GiB of memory", "4 local workers", "more than the limit of 1.0 GiB, -memory-limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestEvaluationFitsTheBoundInChunks: the 1,000-layer model needs about
// 7.8 GB to evaluate 1,000 samples at a time (6.3 GB measured, the failure
// this replaces); under a 3 GiB bound the coordinator evaluates it in
// chunks that fit, and a chunked evaluation gives Evaluate's figures.
func TestEvaluationFitsTheBoundInChunks(t *testing.T) {
	train, test, err := loadedTestSets()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := modelfile.Load(deepModel(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	slots := len(m.Optimizer().State().Slots)
	cfg := testConfig(t, 2)
	for _, c := range []struct {
		limit      sysmem.Bytes
		chunked    bool
		wantRefuse bool
	}{{1 << 40, false, false}, {3 << 30, true, false}, {20 << 20, false, true}} { // 20 MiB: the data (17 MB) fits, one sample (7.8 MB) does not
		cfg.MemoryLimit = c.limit
		p, err := planMemory(cfg, spec, train, test, m.NumParams(), slots)
		switch {
		case c.wantRefuse:
			if err == nil || !strings.Contains(err.Error(), "to evaluate one sample") {
				t.Errorf("limit %v: %v, want a refusal", c.limit, err)
			}
		case err != nil:
			t.Errorf("limit %v: %v", c.limit, err)
		case c.chunked && (p.evalRows < 50 || p.evalRows >= evalRowsMax || p.need > c.limit):
			t.Errorf("limit %v: evaluates %d samples at a time, needing %v", c.limit, p.evalRows, p.need)
		case !c.chunked && p.evalRows != evalRowsMax:
			t.Errorf("limit %v: evaluates %d samples at a time, want %d", c.limit, p.evalRows, evalRowsMax)
		}
	}
	keras, err := nn.New(nn.KerasMNIST())
	if err != nil {
		t.Fatal(err)
	}
	keras.Initialize(3)
	// The package's 1,000 test images: three chunks of 300 and one of 100.
	wantLoss, wantAcc := keras.Evaluate(test)
	gotLoss, gotAcc := evaluateInChunks(keras, test, 300)
	if math.Abs(gotLoss-wantLoss) > 1e-9*math.Abs(wantLoss) || gotAcc != wantAcc {
		t.Errorf("in chunks of 300: loss %v accuracy %v; Evaluate: %v %v", gotLoss, gotAcc, wantLoss, wantAcc)
	}
}

// TestOversizedModelDescriptionIsRefused: a valid model whose description
// is over 10 MiB as the workers receive it (a reshape whose target shape
// lists a million ones) cannot be sent to the workers under gRPC's 8 MiB
// cap: the job is refused before any worker starts, naming the
// description's size and the cap, instead of failing three rings in a row
// with ResourceExhausted. The model is built here rather than parsed from
// a file: parsing 10 MiB of JSON under -race took most of the test's time,
// and what is checked is what the coordinator sends.
func TestOversizedModelDescriptionIsRefused(t *testing.T) {
	shape := make([]int, 1_000_001)
	for i := range shape {
		shape[i] = 1
	}
	shape[len(shape)-1] = 784
	spec := nn.KerasMNIST()
	spec.Layers = []nn.LayerSpec{{Type: "reshape", TargetShape: shape}, {Type: "flatten"}, {Type: "dense", Units: 10, Activation: "softmax"}}
	const path = "big.json"
	cfg := testConfig(t, 0)
	cfg.Workers, cfg.LocalWorkers = 0, 2
	cfg.Model, cfg.ModelName = spec, path
	err := refusedBeforeTraining(t, cfg)
	for _, want := range []string{"the model description " + path + " is 10.", "MiB as JSON", "capped at 8.0 MiB", "too large to send"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
