// Package nn is the model side of the trainer: Sequential models of dense,
// dropout and activation layers, their losses, initialisers, regularisers and
// optimisers, training (Fit), evaluation and prediction, model descriptions
// (Spec) and checkpoints. It does no I/O besides checkpoint files and knows
// nothing of distribution: a distributed trainer calls ComputeGradients,
// averages Grads across workers, then calls ApplyGradients.
//
// # Shapes
//
// Data is row-major, one sample per row: a batch of n samples of width w is a
// []float64 of n·w values. A dense layer's kernel is stored inputs × outputs,
// as Keras stores it, followed by its bias. Every parameter of a model lives
// in one contiguous buffer (Params) and every gradient in another (Grads);
// see Model for why.
//
// # Errors and panics
//
// As in gonum, what the outside world can get wrong returns an error: a model
// description (ParseSpec, Validate), a data set that does not fit the model
// (Fit, CheckDataset), a checkpoint file. Programmer errors panic with a
// message: buffers of the wrong length, a label outside the outputs in
// ComputeGradients, a gradient buffer of the wrong size.
//
// # Precision
//
// Everything is float64. BenchmarkGemmPrecision measures gonum's kernels at
// this package's sizes (one core, AMD EPYC): for the Keras example's 32×10×10
// products float32 is no faster (1.74 µs against 1.86 µs), and that model's
// step is dominated by its sparse first layer and Adam, not by products; on a
// wide 784-512-512 MLP float32 would run at 14.3 GFLOP/s against 8.7. In
// exchange float64 makes gradient checks against finite differences exact to
// 1e-6 or better, keeps distributed training within 1e-6 of single-process
// training, and leaves room for the exact fixed-point reductions of the
// deterministic mode. The wide-model speed is the price, paid knowingly.
//
// # Performance
//
// A first dense layer fed SparseRows (MNIST is four-fifths zeros) does work
// only for nonzero inputs, bit-identical to the dense product. Benchmarks
// (BenchmarkTrainStep and friends) sit next to the code; see the README for
// the side-by-side comparison with PyTorch.
package nn
