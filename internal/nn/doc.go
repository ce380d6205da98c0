// Package nn is the model side of the trainer: Sequential models, their
// losses, initialisers, regularisers, optimisers and learning-rate
// schedules, training (Fit), evaluation and prediction, magnitude pruning,
// memory estimates (EstimateFootprint), model descriptions (Spec, in Keras's
// names and defaults) and checkpoints. It does no I/O besides checkpoint
// files and knows nothing of distribution: a distributed trainer calls
// ComputeGradients, averages Grads across workers, then calls
// ApplyGradients.
//
// # Layers
//
//   - dense: a fully connected layer, y = a(x·W + b).
//   - conv2d: a two-dimensional convolution over [rows, columns, channels]
//     inputs, with strides and valid or same padding, computed as matrix
//     products of unfolded windows (im2col).
//   - max_pooling2d: the largest value of each window, channel by channel.
//   - flatten and reshape: change a sample's shape, not its values.
//   - simple_rnn and lstm: recurrent layers over [steps, features] inputs
//     (an image read row by row), returning the last state or every step's,
//     with input and recurrent dropout.
//   - dropout: zeroes inputs at a rate while training, with masks drawn
//     from the seed, the step and the sample's identity, so that every
//     worker draws the same mask for a sample.
//   - activation: linear, relu, sigmoid, tanh, softmax or step on its own.
//
// The losses are sparse_categorical_crossentropy and
// categorical_crossentropy; the optimisers sgd (with optional momentum,
// classical or Nesterov), rmsprop and adam.
//
// # Shapes
//
// Data is row-major, one sample per row: a batch of n samples of width w is a
// []float64 of n·w values; a sample of shape [rows, columns, channels] or
// [steps, features] is laid out channels (features) last, as Keras lays it
// out. Kernels are stored as Keras stores them (a dense layer's inputs ×
// outputs, a conv2d layer's [kh, kw, channels, filters]), each followed by
// its bias. Every parameter of a model lives
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
// The matrix products of dense, conv2d and recurrent layers run in float32
// through package gemm by default, as every framework trains, with
// sigmoid and tanh vectorised around them; parameters, gradients,
// losses and optimiser state stay float64, and so do activations but
// between float32 convolutions, max-pooling and flatten layers, which
// hand each other float32 values and gradients (float32Layer: a
// conv → pool → conv stack makes no float64 round trip). "dtype": "float64"
// in the model description (or on a dense or conv2d layer) keeps every
// product in float64 through gonum and math's sigmoid and tanh, for
// exactness work: the finite-difference gradient checks run so
// (TestGradientsMatchFiniteDifferences), and the float32 products are
// checked against them (TestFloat32MatchesFloat64). A first dense layer of
// fewer than 64 units stays float64 whatever the dtype: fed sparse rows,
// its float64 pass skips the zeros and is the faster (see narrowUnits).
// Checkpoints name the dtype (Model.Checkpoint).
//
// # Performance
//
// A first dense layer fed SparseRows (MNIST is four-fifths zeros) does work
// only for nonzero inputs, bit-identical to the dense product. Benchmarks
// (BenchmarkTrainStep and friends) sit next to the code; see the README for
// the side-by-side comparison with PyTorch.
package nn
