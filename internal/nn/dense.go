package nn

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// dense is a fully connected layer, y = a(x·W + b), with the kernel W stored
// in×out row-major as Keras stores it.
type dense struct {
	in, out      int
	act          Activation
	useBias      bool
	kInit, bInit Initializer
	kReg, bReg   *Regularizer

	w, b, dw, db []float64
	// w32, b32, dw32 and db32 are the float32 views of a float32 model's
	// buffers, on which a single layer computes (native); without them
	// it computes on float32 copies of w and b.
	w32, b32, dw32, db32 []float32

	// single computes in float32, in f32: the default but for
	// "dtype": "float64". chained marks a single layer of a float32
	// model, which hands its outputs to a float32 neighbour, and takes
	// its gradient back, in float32 (float32Layer).
	single, chained bool
	f32             dense32
	links32
	// narrow marks a first layer of fewer than narrowUnits units bound
	// to a float32 model's buffers (bind32), which skips zero inputs
	// (dense_narrow32.go).
	narrow bool
	// first marks the model's first layer, whose input may leave columns
	// out of the float32 product (see dense32).
	first bool

	// fusedOutput marks the output layer of a model whose loss hands back
	// dL/dz directly (softmax with cross-entropy), skipping act's derivative.
	fusedOutput bool

	x, z, y, dz, dx []float64
	// lse is a softmax layer's log Σ exp(z) per row, from its last
	// forward pass.
	lse []float64
	xs  *SparseRows // the last input, when it came as sparse rows
}

// narrowUnits is the width below which a float32 model's first dense
// layer adds up scaled kernel rows for its nonzero inputs
// (dense_narrow32.go) instead of a product through package gemm: fed
// sparse rows (MNIST is four-fifths zeros) that beats a dense product at
// that width (the Keras example's first layer), and dense rows get the
// same sums, bit-identical to the sparse ones. Wider first layers and all
// later ones use products.
const narrowUnits = 64

// newDense makes the dense layer s describes, over in inputs; first says
// whether it is the model's first layer, model32 whether the model is
// float32.
func newDense(in int, s LayerSpec, first, model32 bool) *dense {
	d := &dense{in: in, out: s.Units, useBias: s.UseBias == nil || *s.UseBias,
		kReg: s.KernelRegularizer, bReg: s.BiasRegularizer, bInit: Zeros,
		single: s.Dtype != "float64", first: first}
	d.chained = d.single && model32
	d.act, _ = parseActivation(s.Activation) // validated by Spec.Validate
	if s.KernelInitializer != "" {
		d.kInit, _ = parseInitializer(s.KernelInitializer)
	}
	if s.BiasInitializer != "" {
		d.bInit, _ = parseInitializer(s.BiasInitializer)
	}
	return d
}

func (d *dense) outputSize() int { return d.out }

func (d *dense) numParams() int {
	if d.useBias {
		return d.in*d.out + d.out
	}
	return d.in * d.out
}

func (d *dense) bind(params, grads []float64) {
	k := d.in * d.out
	d.w, d.dw = params[:k:k], grads[:k:k]
	if d.useBias {
		d.b, d.db = params[k:k+d.out], grads[k:k+d.out]
	}
}

// bind32 binds the float32 views when the layer computes in float32.
func (d *dense) bind32(params, grads []float32) bool {
	if !d.single {
		return false
	}
	k := d.in * d.out
	d.w32, d.dw32 = params[:k:k], grads[:k:k]
	if d.useBias {
		d.b32, d.db32 = params[k:k+d.out], grads[k:k+d.out]
	}
	// The narrow path computes on these views only: a float32 layer of
	// a float64 model, which has none, takes the products on copies.
	d.narrow = d.first && d.out < narrowUnits
	return true
}

func (d *dense) initialize(r *rand.Rand, params []float64) {
	k := d.in * d.out
	d.kInit.fill(params[:k], d.in, d.out, d.in, d.out, r)
	if d.useBias {
		d.bInit.fill(params[k:k+d.out], 1, d.out, d.in, d.out, r)
	}
}

func (d *dense) forward(x []float64, rows int, _ *pass) []float64 {
	d.x, d.xs = x, nil
	switch {
	case d.narrow:
		return d.forwardNarrow32(x, rows)
	case d.single:
		return d.forward32(x, rows)
	}
	d.z = grow(d.z, rows*d.out)
	if d.useBias {
		for r := 0; r < rows; r++ {
			copy(d.z[r*d.out:(r+1)*d.out], d.b)
		}
	}
	beta := 0.0
	if d.useBias {
		beta = 1
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		general(x, rows, d.in), general(d.w, d.in, d.out), beta, general(d.z, rows, d.out))
	return d.activate(rows)
}

// activate computes the outputs y = act(z).
func (d *dense) activate(rows int) []float64 {
	if d.act == Linear {
		d.y = d.z
		return d.y
	}
	d.y = grow(d.y, rows*d.out)
	d.applyAct(rows, d.act.apply)
	return d.y
}

// applyAct computes y = act(z) with apply, except a softmax, which also
// keeps each row's log-sum-exp in lse for the loss.
func (d *dense) applyAct(rows int, apply func(z, y []float64, rows, width int)) {
	if d.act != Softmax {
		apply(d.z, d.y, rows, d.out)
		return
	}
	d.lse = grow(d.lse, rows)
	softmaxRows(d.z, d.y, d.lse, rows, d.out)
}

func (d *dense) backward(dy []float64, rows int, needDX bool) []float64 {
	if d.single {
		return d.backward32(dy, rows, needDX)
	}
	dz := dy
	if !d.fusedOutput && d.act != Linear {
		d.dz = grow(d.dz, rows*d.out)
		d.act.backward(d.y, dy, d.dz, rows, d.out)
		dz = d.dz
	}
	if d.xs != nil {
		d.kernelGradientSparse(dz, rows)
	} else {
		blas64.Gemm(blas.Trans, blas.NoTrans, 1,
			general(d.x, rows, d.in), general(dz, rows, d.out), 0, general(d.dw, d.in, d.out))
	}
	if d.useBias {
		clear(d.db)
		for r := 0; r < rows; r++ {
			for j, v := range dz[r*d.out : (r+1)*d.out] {
				d.db[j] += v
			}
		}
	}
	if !needDX {
		return nil
	}
	d.dx = grow(d.dx, rows*d.in)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1,
		general(dz, rows, d.out), general(d.w, d.in, d.out), 0, general(d.dx, rows, d.in))
	return d.dx
}

func (d *dense) regularized() []regSpan {
	k := d.in * d.out
	return regSpans(regSpan{span{0, k}, d.kReg}, regSpan{span{k, d.numParams() - k}, d.bReg})
}

// general views the first rows×cols values of data as a row-major matrix.
func general(data []float64, rows, cols int) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: data[:rows*cols]}
}
