package nn

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// LayerSpec describes one layer. Type selects which other fields apply; the
// names and defaults are Keras's.
type LayerSpec struct {
	// Type is dense, conv2d, max_pooling2d, flatten, reshape, simple_rnn,
	// lstm, dropout or activation.
	Type string `json:"type"`

	// Units is the output width of a dense, simple_rnn or lstm layer.
	Units int `json:"units,omitempty"`
	// Filters is the number of output channels of a conv2d layer.
	Filters int `json:"filters,omitempty"`
	// KernelSize is a conv2d layer's window, PoolSize a max_pooling2d
	// layer's (default 2×2); Strides their steps (conv2d default 1×1,
	// max_pooling2d default the pool size). Each is [rows, columns] or one
	// number for both.
	KernelSize Pair `json:"kernel_size,omitempty"`
	PoolSize   Pair `json:"pool_size,omitempty"`
	Strides    Pair `json:"strides,omitempty"`
	// Padding is valid (no padding, the default) or same (zeros around the
	// input so that the output has ⌈input/stride⌉ rows and columns, the
	// extra row or column at the bottom or right, as TensorFlow pads).
	Padding string `json:"padding,omitempty"`
	// TargetShape is a reshape layer's output shape.
	TargetShape []int `json:"target_shape,omitempty"`
	// Dtype is the precision of a dense, conv2d or recurrent layer's
	// computation: float32 (the default, as in Keras) or float64. It
	// defaults to the model's; a layer whose dtype differs from the
	// model's computes on copies of its parameters in its own precision.
	Dtype string `json:"dtype,omitempty"`

	// Activation is linear, relu, sigmoid, tanh, softmax or step: for
	// dense and conv2d layers (default linear), activation layers, and
	// simple_rnn and lstm layers (default tanh). RecurrentActivation is an
	// lstm layer's gate activation (default sigmoid).
	Activation          string `json:"activation,omitempty"`
	RecurrentActivation string `json:"recurrent_activation,omitempty"`
	// UseBias defaults to true.
	UseBias *bool `json:"use_bias,omitempty"`
	// KernelInitializer defaults to glorot_uniform, RecurrentInitializer
	// (simple_rnn, lstm) to orthogonal, BiasInitializer to zeros.
	KernelInitializer    string `json:"kernel_initializer,omitempty"`
	RecurrentInitializer string `json:"recurrent_initializer,omitempty"`
	BiasInitializer      string `json:"bias_initializer,omitempty"`
	// UnitForgetBias, for lstm layers, starts the forget gate's bias at 1
	// (default true), as Keras does.
	UnitForgetBias *bool `json:"unit_forget_bias,omitempty"`
	// KernelRegularizer, RecurrentRegularizer and BiasRegularizer add
	// penalties to the loss.
	KernelRegularizer    *Regularizer `json:"kernel_regularizer,omitempty"`
	RecurrentRegularizer *Regularizer `json:"recurrent_regularizer,omitempty"`
	BiasRegularizer      *Regularizer `json:"bias_regularizer,omitempty"`
	// ReturnSequences makes a simple_rnn or lstm layer output its state at
	// every time step ([steps, units]) rather than the last one.
	ReturnSequences bool `json:"return_sequences,omitempty"`

	// Rate is the fraction of inputs a dropout layer zeroes in training.
	Rate float64 `json:"rate,omitempty"`
	// Dropout and RecurrentDropout are the fractions of a recurrent
	// layer's inputs and of its previous state zeroed in training, with
	// one mask per sample for all time steps, as Keras does.
	Dropout          float64 `json:"dropout,omitempty"`
	RecurrentDropout float64 `json:"recurrent_dropout,omitempty"`
}

// Pair is a two-dimensional size, [rows, columns]; JSON may give one number
// for both.
type Pair []int

// UnmarshalJSON accepts n or [rows, columns].
func (p *Pair) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Pair{n, n}
		return nil
	}
	var v []int
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a number or [rows, columns], got %s", b)
	}
	*p = v
	return nil
}

// or returns p, or def when p is not given.
func (p Pair) or(def Pair) Pair {
	if len(p) == 0 {
		return def
	}
	return p
}

type fieldError struct{ field, msg string }

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

// layerGeometry is what shape inference knows of a layer.
type layerGeometry struct {
	in, out []int
	params  uint64
}

// shapes infers every layer's input and output shapes and parameter count,
// checking each layer's fields on the way; errors name the field.
func (s Spec) shapes() ([]layerGeometry, error) {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("nn: model description: %s: %s", field, fmt.Sprintf(format, args...))
	}
	shape := slices.Clone(s.InputShape)
	if _, ok := size(shape); !ok {
		return nil, fail("input_shape", "more than %d values per sample", MaxWidth)
	}
	var total uint64
	geo := make([]layerGeometry, len(s.Layers))
	for i, l := range s.Layers {
		out, params, err := l.geometry(shape)
		if err != nil {
			return nil, fail(fmt.Sprintf("layers[%d].%s", i, err.field), "%s", err.msg)
		}
		if _, ok := size(out); !ok {
			return nil, fail(fmt.Sprintf("layers[%d]", i), "outputs more than %d values per sample (shape %v)", MaxWidth, out)
		}
		if total += params; params > MaxParams || total > MaxParams {
			return nil, fail(fmt.Sprintf("layers[%d]", i), "the model would have more than %d parameters", MaxParams)
		}
		geo[i] = layerGeometry{in: shape, out: out, params: params}
		shape = out
	}
	return geo, nil
}

// size is the number of values of a shape, and whether it is within
// MaxWidth (every dimension positive).
func size(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 1 || d > MaxWidth || n*d > MaxWidth {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// geometry checks the layer's fields against its input shape and returns
// its output shape and parameter count.
func (l LayerSpec) geometry(in []int) ([]int, uint64, *fieldError) {
	if err := l.checkFields(); err != nil {
		return nil, 0, err
	}
	bias := uint64(1)
	if l.UseBias != nil && !*l.UseBias {
		bias = 0
	}
	switch l.Type {
	case "dense":
		if len(in) != 1 {
			return nil, 0, bad("type", "dense takes a flat input, and its input has shape %v: add a flatten layer before it", in)
		}
		if l.Units > MaxWidth {
			return nil, 0, bad("units", "more than %d", MaxWidth)
		}
		return []int{l.Units}, uint64(in[0]+int(bias)) * uint64(l.Units), nil
	case "conv2d", "max_pooling2d":
		if len(in) != 3 {
			return nil, 0, bad("type", "%s takes [rows, columns, channels], and its input has shape %v: add a reshape layer before it", l.Type, in)
		}
		window, strides := l.PoolSize.or(Pair{2, 2}), l.Strides
		if l.Type == "conv2d" {
			window, strides = l.KernelSize, strides.or(Pair{1, 1})
		} else {
			strides = strides.or(window)
		}
		out := make([]int, 3)
		for d := range 2 {
			o, ok := outputExtent(in[d], window[d], strides[d], l.Padding)
			if !ok {
				field := "pool_size"
				if l.Type == "conv2d" {
					field = "kernel_size"
				}
				return nil, 0, bad(field, "%v is larger than the input's %d×%d with valid padding", []int(window), in[0], in[1])
			}
			out[d] = o
		}
		if l.Type == "max_pooling2d" {
			out[2] = in[2]
			return out, 0, nil
		}
		out[2] = l.Filters
		if l.Filters > MaxWidth || window[0]*window[1] > MaxWidth {
			return nil, 0, bad("filters", "too large")
		}
		return out, (uint64(window[0]*window[1]*in[2]) + bias) * uint64(l.Filters), nil
	case "flatten":
		n, _ := size(in)
		return []int{n}, 0, nil
	case "reshape":
		n, _ := size(in)
		m, ok := size(l.TargetShape)
		if !ok || m != n {
			return nil, 0, bad("target_shape", "%v does not hold the input's %d values (shape %v)", l.TargetShape, n, in)
		}
		return slices.Clone(l.TargetShape), 0, nil
	case "simple_rnn", "lstm":
		if len(in) != 2 {
			return nil, 0, bad("type", "%s takes [steps, features], and its input has shape %v: add a reshape layer before it", l.Type, in)
		}
		if l.Units > MaxWidth/4 {
			return nil, 0, bad("units", "more than %d", MaxWidth/4)
		}
		gates := uint64(1)
		if l.Type == "lstm" {
			gates = 4
		}
		u := uint64(l.Units)
		params := gates * u * (uint64(in[1]) + u + bias)
		if l.ReturnSequences {
			return []int{in[0], l.Units}, params, nil
		}
		return []int{l.Units}, params, nil
	default: // dropout, activation
		return slices.Clone(in), 0, nil
	}
}

// outputExtent is the output length of a window sliding over n values.
func outputExtent(n, window, stride int, padding string) (int, bool) {
	if padding == "same" {
		return (n + stride - 1) / stride, true
	}
	if window > n {
		return 0, false
	}
	return (n-window)/stride + 1, true
}

// checkFields checks the fields a layer type takes and rejects the others.
func (l LayerSpec) checkFields() *fieldError {
	given := map[string]bool{
		"units": l.Units != 0, "filters": l.Filters != 0, "kernel_size": l.KernelSize != nil, "pool_size": l.PoolSize != nil,
		"strides": l.Strides != nil, "padding": l.Padding != "", "target_shape": l.TargetShape != nil,
		"activation": l.Activation != "", "recurrent_activation": l.RecurrentActivation != "", "use_bias": l.UseBias != nil,
		"kernel_initializer": l.KernelInitializer != "", "recurrent_initializer": l.RecurrentInitializer != "",
		"bias_initializer": l.BiasInitializer != "", "unit_forget_bias": l.UnitForgetBias != nil,
		"kernel_regularizer": l.KernelRegularizer != nil, "recurrent_regularizer": l.RecurrentRegularizer != nil,
		"bias_regularizer": l.BiasRegularizer != nil, "return_sequences": l.ReturnSequences, "rate": l.Rate != 0, "dtype": l.Dtype != "",
		"dropout": l.Dropout != 0, "recurrent_dropout": l.RecurrentDropout != 0,
	}
	weights := []string{"activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer"}
	recurrent := append([]string{"units", "recurrent_initializer", "recurrent_regularizer", "return_sequences", "dropout", "recurrent_dropout"}, weights...)
	takes := map[string][]string{
		"dense":         append([]string{"units", "dtype"}, weights...),
		"conv2d":        append([]string{"filters", "kernel_size", "strides", "padding", "dtype"}, weights...),
		"max_pooling2d": {"pool_size", "strides", "padding"},
		"flatten":       {},
		"reshape":       {"target_shape"},
		"simple_rnn":    recurrent,
		"lstm":          append([]string{"recurrent_activation", "unit_forget_bias"}, recurrent...),
		"dropout":       {"rate"},
		"activation":    {"activation"},
	}
	fields, ok := takes[l.Type]
	switch {
	case l.Type == "":
		return bad("type", "missing")
	case !ok:
		return bad("type", "unknown layer type %q (want dense, conv2d, max_pooling2d, flatten, reshape, simple_rnn, lstm, dropout or activation)", l.Type)
	}
	for _, f := range slices.Sorted(maps.Keys(given)) {
		if given[f] && !slices.Contains(fields, f) {
			return bad(f, "does not apply to %s layers", l.Type)
		}
	}
	return l.checkValues()
}

// checkValues checks the values of the fields given.
func (l LayerSpec) checkValues() *fieldError {
	positive := func(field string, v int) *fieldError {
		if v < 1 {
			return bad(field, "must be at least 1, got %d", v)
		}
		return nil
	}
	pair := func(field string, p Pair, required bool) *fieldError {
		if p == nil && !required {
			return nil
		}
		if len(p) != 2 || p[0] < 1 || p[1] < 1 {
			return bad(field, "want two positive numbers [rows, columns], got %v", []int(p))
		}
		return nil
	}
	switch l.Type {
	case "dense", "simple_rnn", "lstm":
		if err := positive("units", l.Units); err != nil {
			return err
		}
	case "conv2d":
		if err := positive("filters", l.Filters); err != nil {
			return err
		}
		if err := pair("kernel_size", l.KernelSize, true); err != nil {
			return err
		}
	case "max_pooling2d":
		if err := pair("pool_size", l.PoolSize, false); err != nil {
			return err
		}
	case "reshape":
		if len(l.TargetShape) == 0 {
			return bad("target_shape", "missing")
		}
	case "dropout":
		if !(l.Rate >= 0 && l.Rate < 1) {
			return bad("rate", "must be in [0, 1), got %v", l.Rate)
		}
	case "activation":
		if l.Activation == "" {
			return bad("activation", "missing")
		}
	}
	if err := pair("strides", l.Strides, false); err != nil {
		return err
	}
	if l.Dtype != "" && l.Dtype != "float32" && l.Dtype != "float64" {
		return bad("dtype", "want float32 or float64, got %q", l.Dtype)
	}
	if l.Padding != "" && l.Padding != "valid" && l.Padding != "same" {
		return bad("padding", "want valid or same, got %q", l.Padding)
	}
	for _, a := range []struct{ field, name string }{{"activation", l.Activation}, {"recurrent_activation", l.RecurrentActivation}} {
		if a.name != "" {
			act, err := parseActivation(a.name)
			if err != nil {
				return bad(a.field, "%v", err)
			}
			if act == Softmax && (l.Type == "simple_rnn" || l.Type == "lstm") {
				return bad(a.field, "softmax is not element-wise: a recurrent layer cannot use it")
			}
		}
	}
	for _, init := range []struct{ field, name string }{
		{"kernel_initializer", l.KernelInitializer}, {"recurrent_initializer", l.RecurrentInitializer}, {"bias_initializer", l.BiasInitializer},
	} {
		if init.name != "" {
			if _, err := parseInitializer(init.name); err != nil {
				return bad(init.field, "%v", err)
			}
		}
	}
	for _, reg := range []struct {
		field string
		r     *Regularizer
	}{{"kernel_regularizer", l.KernelRegularizer}, {"recurrent_regularizer", l.RecurrentRegularizer}, {"bias_regularizer", l.BiasRegularizer}} {
		if r := reg.r; r != nil && (r.L1 < 0 || r.L2 < 0 || !finite(r.L1) || !finite(r.L2)) {
			return bad(reg.field, "factors must be finite and non-negative, got l1=%v l2=%v", r.L1, r.L2)
		}
	}
	for _, d := range []struct {
		field string
		v     float64
	}{{"dropout", l.Dropout}, {"recurrent_dropout", l.RecurrentDropout}} {
		if !(d.v >= 0 && d.v < 1) {
			return bad(d.field, "must be in [0, 1), got %v", d.v)
		}
	}
	return nil
}
