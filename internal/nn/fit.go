package nn

import (
	"fmt"
	"math"

	"ringtrain/internal/sampler"
)

// Dataset is a labelled data set a model can train on.
type Dataset interface {
	// Len is the number of samples and Features the values per sample.
	Len() int
	Features() int
	// Label returns the class of sample i.
	Label(i int) int
	// Gather writes the samples ids, one row each, into x and their labels
	// into labels.
	Gather(ids []int, x []float64, labels []int)
}

// FitConfig configures Fit. Zero values take Keras's defaults where it has
// them.
type FitConfig struct {
	// Epochs defaults to 1 and BatchSize to 32.
	Epochs, BatchSize int
	// MaxSteps, when positive, stops training after that many steps, in
	// the middle of an epoch if need be.
	MaxSteps int
	// Seed fixes the data order (see package sampler) and the dropout masks.
	Seed uint64
	// ValidationSplit holds out that fraction of the data, taken from its
	// end before any shuffling as Keras does, and evaluates on it after
	// every epoch.
	ValidationSplit float64
	// OnEpoch, when set, is called after every epoch.
	OnEpoch func(EpochResult)
}

// EpochResult reports one epoch: the mean training loss and accuracy over
// its batches, and the validation metrics when a split was held out.
type EpochResult struct {
	Epoch, Steps         int
	Loss, Accuracy       float64
	ValLoss, ValAccuracy float64
	HasValidation        bool
}

func (r EpochResult) String() string {
	s := fmt.Sprintf("epoch %d: %d steps, loss %.4f, accuracy %.4f", r.Epoch+1, r.Steps, r.Loss, r.Accuracy)
	if r.HasValidation {
		s += fmt.Sprintf(", val_loss %.4f, val_accuracy %.4f", r.ValLoss, r.ValAccuracy)
	}
	return s
}

// Fit trains the model on d, one optimiser step per batch, visiting the
// samples in the order package sampler defines for the seed and batch size.
// It returns an error, before changing the model, when the data cannot train
// it: wrong feature count, labels the outputs cannot represent, a batch
// larger than the data.
func (m *Model) Fit(d Dataset, cfg FitConfig) ([]EpochResult, error) {
	if cfg.Epochs == 0 {
		cfg.Epochs = 1
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 32
	}
	if cfg.Epochs < 0 || cfg.BatchSize < 0 {
		return nil, fmt.Errorf("nn: fit: epochs %d and batch size %d must be positive", cfg.Epochs, cfg.BatchSize)
	}
	if !(cfg.ValidationSplit >= 0 && cfg.ValidationSplit < 1) {
		return nil, fmt.Errorf("nn: fit: validation split %v must be in [0, 1)", cfg.ValidationSplit)
	}
	if err := m.CheckDataset(d); err != nil {
		return nil, err
	}
	nTrain := d.Len() - int(math.Round(cfg.ValidationSplit*float64(d.Len())))
	plan, err := sampler.NewPlan(nTrain, cfg.BatchSize, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("nn: fit: %w", err)
	}
	var valIDs []int
	for i := nTrain; i < d.Len(); i++ {
		valIDs = append(valIDs, i)
	}
	m.SetSeed(cfg.Seed)
	lanes := plan.Range(0, cfg.BatchSize)
	b := &Batch{Labels: make([]int, cfg.BatchSize)}
	var results []EpochResult
	total := cfg.Epochs * plan.StepsPerEpoch()
	if cfg.MaxSteps > 0 {
		total = min(total, cfg.MaxSteps)
	}
	for epoch := 0; epoch*plan.StepsPerEpoch() < total; epoch++ {
		order := lanes.Epoch(epoch)
		var lossSum float64
		var correct int
		steps := min(plan.StepsPerEpoch(), total-epoch*plan.StepsPerEpoch())
		for t := 0; t < steps; t++ {
			m.opt.SetLearningRate(m.spec.Optimizer.LearningRateAt(uint64(epoch*plan.StepsPerEpoch()+t), plan.StepsPerEpoch()))
			b.IDs = order.Batch(t, b.IDs[:0])
			Gather(d, b.IDs, b)
			lossSum += m.ComputeGradients(b, m.opt.Iterations())
			correct += m.countCorrect(b.Labels, b.Rows)
			m.ApplyGradients()
		}
		r := EpochResult{Epoch: epoch, Steps: steps, Loss: lossSum / float64(steps),
			Accuracy: float64(correct) / float64(steps*cfg.BatchSize)}
		if len(valIDs) > 0 {
			r.HasValidation = true
			r.ValLoss, r.ValAccuracy = m.evaluateIDs(d, valIDs, evalBatch)
		}
		results = append(results, r)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(r)
		}
	}
	return results, nil
}

// CheckDataset returns an error when d cannot feed the model: a different
// number of features, or a label outside the model's outputs.
func (m *Model) CheckDataset(d Dataset) error {
	if d.Features() != m.inputSize {
		return fmt.Errorf("nn: data has %d features per sample, the model takes %d", d.Features(), m.inputSize)
	}
	if m.spec.Loss == MeanSquaredError || m.spec.Loss == CategoricalCrossentropy || m.spec.Loss == SparseCategoricalCrossentropy {
		out := m.OutputSize()
		for i := 0; i < d.Len(); i++ {
			if l := d.Label(i); l < 0 || l >= out {
				return fmt.Errorf("nn: sample %d has label %d but the model has %d outputs", i, l, out)
			}
		}
	}
	return nil
}

// countCorrect counts the rows of the last forward pass whose largest output
// is the label.
func (m *Model) countCorrect(labels []int, rows int) int {
	w := m.OutputSize()
	n := 0
	for r := 0; r < rows; r++ {
		if argmax(m.lastY[r*w:(r+1)*w]) == labels[r] {
			n++
		}
	}
	return n
}

// evalBatch is the number of samples Evaluate runs at a time.
const evalBatch = 1000

// Evaluate returns the mean loss (with the regularisation penalties, as
// Keras reports it) and the accuracy of the model on all of d.
func (m *Model) Evaluate(d Dataset) (loss, accuracy float64) {
	return m.EvaluateRange(d, 0, d.Len(), evalBatch)
}

// EvaluateRange is Evaluate on samples lo to hi−1 of d, rows at a time
// (at most 1,000), so that a deep model's activations can be bounded. A
// model evaluated again reuses its buffers: repeated evaluations allocate
// nothing once the first has run. It panics unless 0 ≤ lo ≤ hi ≤ d.Len()
// and rows > 0.
func (m *Model) EvaluateRange(d Dataset, lo, hi, rows int) (loss, accuracy float64) {
	if lo < 0 || hi < lo || hi > d.Len() || rows <= 0 {
		panic(fmt.Sprintf("nn: EvaluateRange(%d, %d, %d) of %d samples", lo, hi, rows, d.Len()))
	}
	e := &m.eval
	e.ids = e.ids[:0]
	for i := lo; i < hi; i++ {
		e.ids = append(e.ids, i)
	}
	return m.evaluateIDs(d, e.ids, min(rows, evalBatch))
}

// evalScratch is what evaluations reuse: the ids of the samples, the batch
// they are gathered into.
type evalScratch struct {
	ids   []int
	batch Batch
}

func (m *Model) evaluateIDs(d Dataset, ids []int, rows int) (loss, accuracy float64) {
	if len(ids) == 0 {
		return math.NaN(), math.NaN()
	}
	n := min(rows, len(ids))
	b := &m.eval.batch
	if cap(b.Labels) < n {
		b.Labels = make([]int, n)
	}
	var lossSum float64
	var correct int
	for start := 0; start < len(ids); start += n {
		part := ids[start:min(start+n, len(ids))]
		b.Labels = b.Labels[:len(part)]
		Gather(d, part, b)
		m.forward(b, &pass{})
		l, _ := m.loss.compute(m.lastZ, m.lastY, m.lastLSE, b, m.OutputSize(), 1/float64(b.Rows), false)
		lossSum += l * float64(b.Rows)
		correct += m.countCorrect(b.Labels, b.Rows)
	}
	return lossSum/float64(len(ids)) + m.penalties(), float64(correct) / float64(len(ids))
}
