package worker

import (
	"strings"
	"testing"

	"ringtrain/internal/nn"
	pb "ringtrain/proto"
)

// TestAssignmentOverTheMemoryLimitIsRefused: 1,000 activation layers
// trained on 32 samples a step need about 0.6 GiB of activations; a worker
// limited to 256 MiB refuses the assignment with the estimate and its
// limit, before any step; the Keras example fits, and so does the deep
// model under the machine's own memory.
func TestAssignmentOverTheMemoryLimitIsRefused(t *testing.T) {
	layers := strings.Repeat(`{"type": "activation", "activation": "relu"},`, 1000)
	deep := `{"input_shape": [784], "layers": [` + layers + `{"type": "dense", "units": 10, "activation": "softmax"}],
		"loss": "sparse_categorical_crossentropy", "optimizer": {"name": "adam"}}`
	assign := func(model string) *pb.Assignment {
		return &pb.Assignment{LaneCount: 32, Job: &pb.JobSpec{ModelJson: model, StepsPerEpoch: 1875}}
	}
	w := &worker{cfg: Config{ID: "w-0", MemoryLimit: 256 << 20}}
	err := w.checkMemory(assign(deep))
	for _, want := range []string{"worker w-0: the model", "to train 32 samples a step here", "more than the limit of 256.0 MiB, -memory-limit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("deep model under 256 MiB: %v; want it to say %q", err, want)
		}
	}
	if err := w.checkMemory(assign(string(nn.KerasMNIST().JSON()))); err != nil {
		t.Errorf("Keras example under 256 MiB: %v", err)
	}
	w.cfg.MemoryLimit = 0 // the machine's
	if err := w.checkMemory(assign(deep)); err != nil {
		t.Errorf("deep model under the machine's memory: %v", err)
	}
}
