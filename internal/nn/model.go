package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Model is a Sequential model: layers applied in order, a loss and an
// optimiser, built from a Spec.
//
// All parameters live in one contiguous buffer and all gradients in another,
// each layer holding views into them. A collective can therefore average the
// whole gradient in one call on one slice, and the optimiser update every
// layer in one loop, with no gathering or scattering of per-layer tensors;
// checkpoints and weight hashes read one slice too.
//
// The buffers and the optimiser state are in the model's dtype: float32 by
// default, read through Params32 and Grads32, or float64 ("dtype":
// "float64"), read through Params and Grads. The accessors of the other
// dtype panic; AppendParams and SetParams work in float64 for either.
//
// A Model is not safe for concurrent use.
type Model struct {
	spec      Spec
	layers    []layer
	loss      *loss
	opt       Optimizer
	inputSize int

	// single marks a float32 model, whose live buffers are params32 and
	// grads32. For a float64 model params and grads are; n is their
	// length.
	single            bool
	n                 int
	params, grads     []float64
	params32, grads32 []float32
	// In a float32 model, bridged marks the layers that compute on float64
	// parameters, and shadow[i] holds bridged layer i's float64 views of
	// its range of the buffers, widened from params32 before each forward
	// pass, the gradient narrowed into grads32 after the backward pass.
	// The other layers have no float64 parameters.
	bridged []bool
	shadow  []shadowSpan
	// offsets[i] is where layer i's parameters begin; regs are the
	// regularised ranges of the buffers.
	offsets []int
	regs    []regSpan
	seed    uint64

	// last holds the output layer's logits and outputs of the last forward
	// pass, which the loss reads.
	lastZ, lastY []float64
	// lastLSE is the output softmax's log-sum-exp per row, nil without one.
	lastLSE []float64
	// dense holds sparse input rows densified for a first layer that is not
	// dense.
	denseX []float64
	// Pruning's scratch: the zeros to keep through an update, and a
	// sorting buffer.
	zeros      []int32
	pruneOrder []int32
	// eval is the evaluations' scratch.
	eval evalScratch
}

// New builds the model spec describes, with zeroed parameters; call
// Initialize or load parameters before training.
func New(spec Spec) (*Model, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	geo, _ := spec.shapes() // validated
	m := &Model{spec: spec}
	m.inputSize, _ = size(spec.InputShape)
	var outAct Activation
	for i, ls := range spec.Layers {
		in := geo[i].in
		width, _ := size(in)
		if ls.Dtype == "" {
			ls.Dtype = spec.Dtype
		}
		var l layer
		switch ls.Type {
		case "dense":
			d := newDense(width, ls, i == 0, spec.DtypeOrDefault() != "float64")
			outAct = d.act
			l = d
		case "conv2d":
			c := newConv2D(in, ls)
			outAct = c.act
			l = c
		case "max_pooling2d":
			l = newMaxPool2D(in, ls)
		case "flatten", "reshape":
			l = &reshape{width: width}
		case "simple_rnn", "lstm":
			r := newRecurrent(i, in, ls)
			outAct = r.act
			l = r
		case "dropout":
			l = &dropout{width: width, rate: ls.Rate, index: uint64(i)}
		case "activation":
			a, _ := parseActivation(ls.Activation)
			outAct = a
			l = &activation{width: width, act: a}
		}
		m.layers = append(m.layers, l)
	}
	link32(m.layers)
	n := 0
	for _, l := range m.layers {
		m.offsets = append(m.offsets, n)
		for _, r := range l.regularized() {
			r.off += n
			m.regs = append(m.regs, r)
		}
		n += l.numParams()
	}
	m.single = spec.DtypeOrDefault() != "float64"
	m.n = n
	var opt Optimizer
	var err error
	if m.single {
		m.params32 = make([]float32, n)
		m.BindGradients32(make([]float32, n))
		m.bindShadow()
		opt, err = NewOptimizer32(spec.Optimizer, n)
	} else {
		m.params = make([]float64, n)
		m.BindGradients(make([]float64, n))
		opt, err = NewOptimizer(spec.Optimizer, n)
	}
	if err != nil {
		return nil, err
	}
	m.opt = opt
	m.loss = newLoss(spec.Loss, outAct)
	if d, ok := m.layers[len(m.layers)-1].(*dense); ok && m.loss.fused {
		d.fusedOutput = true
	} else if m.loss.fused {
		// A separate softmax layer ends the model: fusing would need its
		// input's logits, so compute the loss from probabilities instead.
		m.loss.fused = false
	}
	return m, nil
}

// Spec returns the model's description.
func (m *Model) Spec() Spec { return m.spec }

// NumParams is the number of trainable values.
func (m *Model) NumParams() int { return m.n }

// Dtype is the type of the model's parameters, gradients and optimiser
// state: "float32" or "float64".
func (m *Model) Dtype() string {
	if m.single {
		return "float32"
	}
	return "float64"
}

// KeysSamples reports whether a training pass depends on Batch.IDs: a
// dropout layer keys its masks by the samples' ids. Without one, IDs may
// be left nil.
func (m *Model) KeysSamples() bool {
	for _, l := range m.layers {
		if _, ok := l.(*dropout); ok {
			return true
		}
	}
	return false
}

// InputSize is the number of values per input sample.
func (m *Model) InputSize() int { return m.inputSize }

// OutputSize is the number of values per output sample.
func (m *Model) OutputSize() int { return m.layers[len(m.layers)-1].outputSize() }

// Params is the contiguous parameter buffer of a float64 model, layer after
// layer, each layer's kernel (row-major, inputs × outputs) before its bias.
// Writing to it changes the model. It panics for a float32 model (see
// Params32).
func (m *Model) Params() []float64 {
	m.mustBe(false, "Params")
	return m.params
}

// Grads is the contiguous gradient buffer of a float64 model, laid out as
// Params. It panics for a float32 model (see Grads32).
func (m *Model) Grads() []float64 {
	m.mustBe(false, "Grads")
	return m.grads
}

// Params32 is Params for a float32 model. It panics for a float64 one.
func (m *Model) Params32() []float32 {
	m.mustBe(true, "Params32")
	return m.params32
}

// Grads32 is Grads for a float32 model. It panics for a float64 one.
func (m *Model) Grads32() []float32 {
	m.mustBe(true, "Grads32")
	return m.grads32
}

// AppendParams appends the parameters to dst, widened to float64 for a
// float32 model, and returns the result.
func (m *Model) AppendParams(dst []float64) []float64 {
	if !m.single {
		return append(dst, m.params...)
	}
	n := len(dst)
	dst = slices.Grow(dst, len(m.params32))[:n+len(m.params32)]
	widen(dst[n:], m.params32)
	return dst
}

// SetParams sets the parameters from src, rounding to float32 for a
// float32 model. It panics if len(src) is not NumParams.
func (m *Model) SetParams(src []float64) {
	if len(src) != m.n {
		panic(fmt.Sprintf("nn: %d parameters for a model of %d", len(src), m.n))
	}
	if m.single {
		narrow(m.params32, src)
		return
	}
	copy(m.params, src)
}

// mustBe panics unless the model's dtype is float32 when single is true,
// float64 otherwise.
func (m *Model) mustBe(single bool, what string) {
	if m.single != single {
		panic(fmt.Sprintf("nn: %s of a %s model", what, m.Dtype()))
	}
}

// Optimizer returns the model's optimiser.
func (m *Model) Optimizer() Optimizer { return m.opt }

// BindGradients makes buf the gradient buffer of a float64 model, so that
// a caller can place the gradients inside a larger vector it reduces in one
// call. It panics if len(buf) is not NumParams or the model is float32 (see
// BindGradients32).
func (m *Model) BindGradients(buf []float64) {
	m.mustBe(false, "BindGradients")
	if len(buf) != m.n {
		panic(fmt.Sprintf("nn: gradient buffer of %d values for a model of %d parameters", len(buf), m.n))
	}
	m.grads = buf
	for i, l := range m.layers {
		k, off := l.numParams(), m.offsets[i]
		l.bind(m.params[off:off+k:off+k], buf[off:off+k:off+k])
	}
}

// BindGradients32 is BindGradients for a float32 model. It panics if
// len(buf) is not NumParams or the model is float64.
func (m *Model) BindGradients32(buf []float32) {
	m.mustBe(true, "BindGradients32")
	if len(buf) != len(m.params32) {
		panic(fmt.Sprintf("nn: gradient buffer of %d values for a model of %d parameters", len(buf), len(m.params32)))
	}
	m.grads32 = buf
	m.bridged = make([]bool, len(m.layers))
	for i, l := range m.layers {
		k, off := l.numParams(), m.offsets[i]
		if l32, ok := l.(native32); ok && k > 0 && l32.bind32(m.params32[off:off+k:off+k], buf[off:off+k:off+k]) {
			continue
		}
		m.bridged[i] = k > 0
	}
}

// shadowSpan is a bridged layer's float64 parameters and gradients.
type shadowSpan struct{ params, grads []float64 }

// bindShadow gives each bridged layer of a float32 model float64 views of
// its own, and no other layer any.
func (m *Model) bindShadow() {
	m.shadow = make([]shadowSpan, len(m.layers))
	for i, b := range m.bridged {
		if !b {
			continue
		}
		k := m.layers[i].numParams()
		buf := make([]float64, 2*k)
		s := shadowSpan{params: buf[:k:k], grads: buf[k:]}
		m.layers[i].bind(s.params, s.grads)
		m.shadow[i] = s
	}
}

// native32 is a layer that can compute on float32 parameters and
// gradients in a float32 model.
type native32 interface {
	// bind32 points the layer's float32 views at its ranges of the
	// model's buffers and reports whether it computes on them; a layer
	// that reports false keeps computing on its float64 views.
	bind32(params, grads []float32) bool
}

// widenBridged copies the parameters of a float32 model's bridged layers
// into their float64 views.
func (m *Model) widenBridged() {
	if !m.single {
		return
	}
	for i, b := range m.bridged {
		if b {
			lo := m.offsets[i]
			widen(m.shadow[i].params, m.params32[lo:lo+len(m.shadow[i].params)])
		}
	}
}

// Initialize draws the initial parameters with each layer's initialisers
// from a generator seeded by seed, and keys the dropout masks with seed.
// The initialisers draw in float64; a float32 model's parameters are those
// draws rounded, drawn a layer at a time into a scratch buffer (or a
// bridged layer's float64 views) that the model does not keep.
func (m *Model) Initialize(seed uint64) {
	m.seed = seed
	var scratch []float64
	for i, l := range m.layers {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		lo, hi := m.offsets[i], m.offsets[i]+l.numParams()
		switch {
		case !m.single:
			l.initialize(r, m.params[lo:hi])
		case m.bridged[i]:
			l.initialize(r, m.shadow[i].params)
			narrow(m.params32[lo:hi], m.shadow[i].params)
		default:
			scratch = grow(scratch, hi-lo)
			l.initialize(r, scratch)
			narrow(m.params32[lo:hi], scratch)
		}
	}
}

// SetSeed keys the dropout masks, for a model whose parameters come from
// elsewhere.
func (m *Model) SetSeed(seed uint64) { m.seed = seed }

// forward runs the layers on the rows of b and keeps the output layer's
// logits and outputs for the loss.
func (m *Model) forward(b *Batch, p *pass) []float64 {
	m.widenBridged()
	rows := b.Rows
	layers := m.layers
	var x []float64
	switch first, isDense := layers[0].(*dense); {
	case b.Sparse != nil && isDense:
		x = first.forwardSparse(b.Sparse, rows)
		layers = layers[1:]
	case b.Sparse != nil:
		m.denseX = grow(m.denseX, rows*m.inputSize)
		b.Sparse.densify(m.denseX, rows, m.inputSize)
		x = m.denseX
	default:
		x = b.X
		if len(x) < rows*m.inputSize {
			panic(fmt.Sprintf("nn: input of %d values for %d samples of %d", len(x), rows, m.inputSize))
		}
	}
	for _, l := range layers {
		x = l.forward(x, rows, p)
	}
	m.lastY, m.lastZ, m.lastLSE = x, x, nil
	if d, ok := m.layers[len(m.layers)-1].(*dense); ok {
		m.lastZ = d.z
		if d.act == Softmax {
			m.lastLSE = d.lse
		}
	}
	return x
}

// ComputeGradients runs a training forward and backward pass on b and
// overwrites the gradient buffer with the gradient of the mean loss over the
// batch plus the regularisation penalties. It returns that loss. step keys
// the dropout masks and should be the number of updates applied so far.
func (m *Model) ComputeGradients(b *Batch, step uint64) float64 {
	return m.backprop(b, step, 1/float64(b.Rows), nil) + m.AddPenalties()
}

// ScaledGradients overwrites the gradient buffer with the gradient of scale
// times the summed loss of the batch, without the penalties, and returns
// that scaled loss. With scale 1/B for a global batch of B samples split
// between workers, the workers' results add up to the gradient of the
// global mean loss.
func (m *Model) ScaledGradients(b *Batch, step uint64, scale float64) float64 {
	return m.backprop(b, step, scale, nil)
}

// ScaledGradientsReady is ScaledGradients that reports the gradient
// buffer's ranges as they become final, so that a caller can reduce them
// while the backward pass goes on (as PyTorch's DistributedDataParallel
// does with its buckets). The backward pass runs the layers last to first;
// when a layer with parameters has written its gradient, ready(lo, hi) is
// called, on the caller's goroutine, with that layer's range of Grads().
// The ranges come in decreasing order, each ending where the one after it
// begins, and together cover the whole buffer, the first beginning at
// NumParams() minus the last layer's parameters and the last ending at 0.
// A reported range is final: the pass neither reads nor writes it again,
// so another goroutine may read or overwrite Grads()[lo:hi] from the time
// ready is called (regularisation penalties, which need every layer's
// gradient added, are not included, as in ScaledGradients: add them after
// the reduction with AddPenalties). The parameters must not change until
// the call returns.
func (m *Model) ScaledGradientsReady(b *Batch, step uint64, scale float64, ready func(lo, hi int)) float64 {
	return m.backprop(b, step, scale, ready)
}

// SumGradients is ComputeGradients for the sum of the per-sample losses
// instead of their mean, and without the penalties: the gradient of a batch
// is then the sum of the gradients of any split of it into smaller batches,
// up to rounding. It returns the summed loss.
func (m *Model) SumGradients(b *Batch, step uint64) float64 {
	return m.backprop(b, step, 1, nil)
}

// AddPenalties adds the regularisation penalties' gradient to the gradient
// buffer and returns the penalties' value.
func (m *Model) AddPenalties() float64 {
	var sum float64
	for _, r := range m.regs {
		lo, hi := r.off, r.off+r.n
		if m.single {
			sum += penalty(r.r, m.params32[lo:hi])
			addPenaltyGradient(r.r, m.params32[lo:hi], m.grads32[lo:hi])
		} else {
			sum += penalty(r.r, m.params[lo:hi])
			addPenaltyGradient(r.r, m.params[lo:hi], m.grads[lo:hi])
		}
	}
	return sum
}

// penalties is the regularisation penalties' value.
func (m *Model) penalties() float64 {
	var sum float64
	for _, r := range m.regs {
		lo, hi := r.off, r.off+r.n
		if m.single {
			sum += penalty(r.r, m.params32[lo:hi])
		} else {
			sum += penalty(r.r, m.params[lo:hi])
		}
	}
	return sum
}

// backprop overwrites the gradient buffer with the gradient of scale times
// the summed loss of the batch, and returns that scaled loss. ready, when
// not nil, is told of each layer's gradient range once written (see
// ScaledGradientsReady).
func (m *Model) backprop(b *Batch, step uint64, scale float64, ready func(lo, hi int)) float64 {
	p := &pass{train: true, seed: m.seed, step: step, ids: b.IDs}
	m.forward(b, p)
	loss, dy := m.loss.compute(m.lastZ, m.lastY, m.lastLSE, b, m.OutputSize(), scale, true)
	// The first layer with parameters needs no input gradient, nor do the
	// layers before it.
	firstTrainable := len(m.layers)
	for i, l := range m.layers {
		if l.numParams() > 0 {
			firstTrainable = i
			break
		}
	}
	hi := m.n
	for i := len(m.layers) - 1; i >= 0; i-- {
		dy = m.layers[i].backward(dy, b.Rows, i > firstTrainable)
		if m.single && m.bridged[i] {
			lo := m.offsets[i]
			narrow(m.grads32[lo:lo+len(m.shadow[i].grads)], m.shadow[i].grads)
		}
		if k := m.layers[i].numParams(); ready != nil && k > 0 {
			ready(hi-k, hi)
			hi -= k
		}
		if i <= firstTrainable {
			break
		}
	}
	return loss
}

// ApplyGradients applies one optimiser step with the gradient buffer, and
// the model's pruning schedule, if any.
func (m *Model) ApplyGradients() {
	p := m.spec.Pruning
	if p == nil {
		m.step()
		return
	}
	t := m.opt.Iterations()
	active := t >= uint64(p.BeginStep)
	if active {
		m.keepZeros()
	}
	m.step()
	if active {
		m.restoreZeros()
	}
	if s, due := p.target(t); due {
		m.Prune(s)
	}
}

// step applies the optimiser to the live buffers.
func (m *Model) step() {
	if m.single {
		m.opt.Step32(m.params32, m.grads32)
	} else {
		m.opt.Step(m.params, m.grads)
	}
}

// Predict returns the outputs (class probabilities for a softmax model) of
// rows samples of x, rows×OutputSize values in a new slice.
func (m *Model) Predict(x []float64, rows int) []float64 {
	y := m.forward(&Batch{X: x, Rows: rows}, &pass{})
	return append([]float64(nil), y[:rows*m.OutputSize()]...)
}

// Classes returns the index of the largest output of each row of y.
func Classes(y []float64, width int) []int {
	out := make([]int, len(y)/width)
	for r := range out {
		out[r] = argmax(y[r*width : (r+1)*width])
	}
	return out
}

func argmax(v []float64) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}
