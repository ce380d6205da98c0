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
// A model's dtype, float32 by default as every framework trains, is the
// type of its parameters, gradients and optimiser state: a float32 model
// holds them as []float32 (Model.Params32, Model.Grads32, NewOptimizer32),
// its optimisers, regularisers and pruning computing in float32, and a
// worker reduces its gradient in float32 in place. "dtype": "float64" in
// the model description keeps all of it in float64, for exactness work:
// the finite-difference gradient checks run so
// (TestGradientsMatchFiniteDifferences), and the float32 layers are
// checked against float64 ones (TestFloat32MatchesFloat64,
// TestConvFloat32MatchesFloat64).
//
// The matrix products of dense, conv2d and recurrent layers run in float32
// through package gemm in a float32 model, with sigmoid and tanh
// vectorised around them. Dense and conv2d layers of a float32 model, and
// max-pooling and flatten layers between them, hand each other float32
// values and gradients (float32Layer), bias and ReLU added in place on the
// products; other activations, dropout, recurrent layers' outputs and the
// loss compute in float64, converting where they meet a float32 layer. Dense,
// conv2d and recurrent layers multiply the model's float32 buffers in
// place; in a float32 model, a first dense layer of fewer than 64 units
// (the Keras example's) adds up scaled kernel rows in float32 for its nonzero inputs instead,
// which beats both a product and the float64 pass it replaced
// (narrowUnits; BenchmarkTrainStep/keras/batch=32 at GOMAXPROCS=1, five
// interleaved runs: median 203,573 samples/cpu-s with the float64 pass,
// 268,003 in float32). A layer given "dtype": "float64" in a float32
// model still computes on float64 views: the model widens its parameters
// into a float64 shadow before each forward pass and narrows its gradient
// into Grads32 after its backward pass. Only such layers have a shadow,
// each its own (16 bytes a parameter, which EstimateFootprint counts);
// the other layers' parameters exist in float32 alone, their initialisers
// drawing in float64 a layer at a time into a scratch buffer and
// rounding, so that a seed gives the same weights in either dtype (in
// float32, rounded). A float32 layer of a float64 model computes its
// products on float32 copies of its float64 parameters
// (TestFloat32LayerOfFloat64Model).
//
// Checkpoints store values in the model's dtype and name it
// (Model.Checkpoint); a version-1 checkpoint, written when parameters were
// float64 in memory whatever the dtype, loads into a float32 model rounded
// to float32, and float32 values do not load into a float64 model
// (Checkpoint.Model says what to do).
//
// # Performance
//
// A first dense layer fed SparseRows (MNIST is four-fifths zeros) does work
// only for nonzero inputs, bit-identical to the dense product. Benchmarks
// (BenchmarkTrainStep and friends) sit next to the code; see the README for
// the side-by-side comparison with PyTorch.
package nn
