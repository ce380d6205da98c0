package worker

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/mnist"
	"ringtrain/internal/nn"
)

// kindRecorder is a transport that records the kind of every frame sent.
type kindRecorder struct {
	allreduce.Transport
	mu    sync.Mutex
	kinds map[allreduce.Kind]int
}

func (k *kindRecorder) Send(ctx context.Context, f *allreduce.Frame) error {
	k.mu.Lock()
	k.kinds[f.Kind]++
	k.mu.Unlock()
	return k.Transport.Send(ctx, f)
}

// TestGradientsTravelInTheModelsDtype runs ordinary steps on two workers:
// a float32 model's gradients go over the ring as float32 and a float64
// model's as float64, and both replicas end with the same weights.
func TestGradientsTravelInTheModelsDtype(t *testing.T) {
	data := loadMNIST(t, mnist.Train).Subset(seqInts(600))
	for _, dtype := range []string{"float32", "float64"} {
		spec := nn.KerasMNIST()
		spec.Dtype = dtype
		rings := allreduce.NewMemRing(2)
		ids := seqInts(600)
		var steppers []*stepper
		var recorders []*kindRecorder
		for r := range 2 {
			m, err := nn.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			m.Initialize(3)
			rec := &kindRecorder{Transport: rings[r], kinds: map[allreduce.Kind]int{}}
			recorders = append(recorders, rec)
			steppers = append(steppers, newStepper(m, allreduce.New(rec, allreduce.DefaultConfig()), data, ids, 64, time.Minute))
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for r, st := range steppers {
			wg.Go(func() {
				for step := range 3 {
					local := seqInts(32)
					for i := range local {
						local[i] += 32*r + 64*step
					}
					if _, _, _, err := st.step(context.Background(), uint64(step), local, false); err != nil {
						errs[r] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, r := range rings {
			r.Close()
		}
		for r, err := range errs {
			if err != nil {
				t.Fatalf("%s: rank %d: %v", dtype, r, err)
			}
		}
		want := map[string]allreduce.Kind{"float32": allreduce.Float32, "float64": allreduce.Float64}[dtype]
		for r, rec := range recorders {
			if rec.kinds[want] == 0 || len(rec.kinds) != 1 {
				t.Fatalf("%s model: rank %d sent frames of kinds %v, want only %v", dtype, r, rec.kinds, want)
			}
		}
		if !slices.Equal(paramsOf(steppers[0].model), paramsOf(steppers[1].model)) {
			t.Fatalf("%s: the replicas' weights differ", dtype)
		}
	}
}
