package nn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Spec describes a model completely: its layers, loss and optimiser. It is
// written and read as JSON with Keras's names, so a job can carry it to every
// worker and a checkpoint can carry it to the next run. Fields left out take
// Keras's defaults.
type Spec struct {
	// InputShape is the shape of one sample, [784] for flattened MNIST.
	InputShape []int       `json:"input_shape"`
	Layers     []LayerSpec `json:"layers"`
	// Loss is sparse_categorical_crossentropy, categorical_crossentropy or
	// mean_squared_error.
	Loss      string        `json:"loss"`
	Optimizer OptimizerSpec `json:"optimizer"`
	// Pruning, when set, prunes the kernels by magnitude during training.
	Pruning *PruningSpec `json:"pruning,omitempty"`
	// Dtype is the type of the model's parameters, gradients and
	// optimiser state and the precision its layers compute in: float32
	// (the default, as every framework trains) or float64, for exactness
	// work such as gradient checks. A layer's own dtype overrides the
	// precision of that layer's computation.
	Dtype string `json:"dtype,omitempty"`
}

// Regularizer is an L1, L2 or L1L2 weight penalty, l1·Σ|w| + l2·Σw², added
// to the loss as Keras does. In JSON it is either an object {"l1": a, "l2": b}
// or one of the strings "l1", "l2" (factor 0.01, Keras's default) and "l1_l2"
// (both 0.01).
type Regularizer struct {
	L1 float64 `json:"l1,omitempty"`
	L2 float64 `json:"l2,omitempty"`
}

// UnmarshalJSON accepts the object and the string forms.
func (r *Regularizer) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		switch name {
		case "l1":
			*r = Regularizer{L1: 0.01}
		case "l2":
			*r = Regularizer{L2: 0.01}
		case "l1_l2":
			*r = Regularizer{L1: 0.01, L2: 0.01}
		default:
			return fmt.Errorf("unknown regularizer %q (want l1, l2, l1_l2 or an object)", name)
		}
		return nil
	}
	type plain Regularizer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(r))
}

// OptimizerSpec names an optimiser and its hyper-parameters. Fields left out
// of the JSON take Keras's defaults for that optimiser (DefaultOptimizer).
type OptimizerSpec struct {
	// Name is sgd, rmsprop, adam or adamw.
	Name         string  `json:"name"`
	LearningRate float64 `json:"learning_rate"`
	// Momentum and Nesterov apply to sgd; Momentum also to rmsprop.
	Momentum float64 `json:"momentum"`
	Nesterov bool    `json:"nesterov"`
	// Rho and Centered apply to rmsprop.
	Rho      float64 `json:"rho"`
	Centered bool    `json:"centered"`
	// Beta1 and Beta2 apply to adam and adamw.
	Beta1 float64 `json:"beta_1"`
	Beta2 float64 `json:"beta_2"`
	// Epsilon applies to rmsprop, adam and adamw.
	Epsilon float64 `json:"epsilon"`
	// WeightDecay is decoupled weight decay (Loshchilov and Hutter): before
	// each update every parameter w becomes w − learning_rate·weight_decay·w.
	// It applies to every optimiser; adamw defaults it to 0.004.
	WeightDecay float64 `json:"weight_decay"`
	// Schedule, when set, varies the learning rate with the step.
	Schedule *ScheduleSpec `json:"schedule,omitempty"`
}

// DefaultOptimizer returns the Keras defaults of the named optimiser.
func DefaultOptimizer(name string) (OptimizerSpec, error) {
	switch name {
	case "sgd":
		return OptimizerSpec{Name: name, LearningRate: 0.01}, nil
	case "rmsprop":
		return OptimizerSpec{Name: name, LearningRate: 0.001, Rho: 0.9, Epsilon: 1e-7}, nil
	case "adam":
		return OptimizerSpec{Name: name, LearningRate: 0.001, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}, nil
	case "adamw":
		return OptimizerSpec{Name: name, LearningRate: 0.001, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7, WeightDecay: 0.004}, nil
	}
	return OptimizerSpec{}, fmt.Errorf("unknown optimizer %q (want sgd, rmsprop, adam or adamw)", name)
}

// UnmarshalJSON fills the named optimiser's defaults, then the given fields.
func (o *OptimizerSpec) UnmarshalJSON(b []byte) error {
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	if head.Name == "" {
		return &pathError{"name", "missing"}
	}
	def, err := DefaultOptimizer(head.Name)
	if err != nil {
		return &pathError{"name", err.Error()}
	}
	type plain OptimizerSpec
	p := plain(def)
	if err := strictDecode(b, &p); err != nil {
		return err
	}
	*o = OptimizerSpec(p)
	return nil
}

// KerasMNIST is the model of the classic Keras MNIST example:
// Dense(10, relu) → Dense(10, relu) → Dense(10, softmax) on 784 inputs,
// sparse categorical cross-entropy and Adam with its defaults.
func KerasMNIST() Spec {
	return Spec{
		InputShape: []int{784},
		Layers: []LayerSpec{
			{Type: "dense", Units: 10, Activation: "relu"},
			{Type: "dense", Units: 10, Activation: "relu"},
			{Type: "dense", Units: 10, Activation: "softmax"},
		},
		Loss:      "sparse_categorical_crossentropy",
		Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.001, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7},
	}
}

// ParseSpec reads a JSON model description and validates it. Errors name the
// offending field, for example "layers[1].units: must be at least 1, got 0".
func ParseSpec(data []byte) (Spec, error) {
	var raw struct {
		InputShape []int             `json:"input_shape"`
		Layers     []json.RawMessage `json:"layers"`
		Loss       string            `json:"loss"`
		Optimizer  json.RawMessage   `json:"optimizer"`
		Pruning    *PruningSpec      `json:"pruning"`
		Dtype      string            `json:"dtype"`
	}
	if err := strictDecode(data, &raw); err != nil {
		return Spec{}, at("", err)
	}
	s := Spec{InputShape: raw.InputShape, Loss: raw.Loss, Pruning: raw.Pruning, Dtype: raw.Dtype}
	for i, lr := range raw.Layers {
		var l LayerSpec
		if err := strictDecode(lr, &l); err != nil {
			return Spec{}, at(fmt.Sprintf("layers[%d]", i), err)
		}
		s.Layers = append(s.Layers, l)
	}
	if len(raw.Optimizer) == 0 {
		return Spec{}, at("optimizer", errors.New("missing"))
	}
	if err := json.Unmarshal(raw.Optimizer, &s.Optimizer); err != nil {
		return Spec{}, at("optimizer", err)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// JSON returns the description as indented JSON that ParseSpec reads back.
func (s Spec) JSON() []byte {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // a Spec holds only marshalable values
	}
	return b
}

// pathError is a problem with the field at path, relative to the object
// being decoded.
type pathError struct{ path, msg string }

func (e *pathError) Error() string { return e.path + ": " + e.msg }

// at formats err as a model description error under the field prefix,
// joining paths with dots: at("layers[1]", units error) gives
// "nn: model description: layers[1].units: ...".
func at(prefix string, err error) error {
	var pe *pathError
	switch {
	case errors.As(err, &pe) && prefix != "":
		return fmt.Errorf("nn: model description: %s.%s: %s", prefix, pe.path, pe.msg)
	case prefix != "":
		return fmt.Errorf("nn: model description: %s: %w", prefix, err)
	default:
		return fmt.Errorf("nn: model description: %w", err)
	}
}

// strictDecode unmarshals b into v, rejecting unknown fields and trailing
// data, and names the field of a type error.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &pathError{te.Field, fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)}
		}
		if msg, ok := strings.CutPrefix(err.Error(), "json: "); ok {
			return errors.New(msg)
		}
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// Bounds of a model description, so that a description cannot ask for more
// memory than a worker has: MaxWidth values in a sample or a layer's output,
// MaxParams parameters in all (512 MiB as float64, per copy).
const (
	MaxWidth  = 1 << 24
	MaxParams = 1 << 26
)

// Validate checks every field and returns an error naming the first that is
// wrong.
func (s Spec) Validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("nn: model description: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if len(s.InputShape) == 0 {
		return fail("input_shape", "missing")
	}
	for i, d := range s.InputShape {
		if d < 1 {
			return fail(fmt.Sprintf("input_shape[%d]", i), "must be at least 1, got %d", d)
		}
	}
	if len(s.Layers) == 0 {
		return fail("layers", "a model needs at least one layer")
	}
	if _, err := s.shapes(); err != nil {
		return err
	}
	switch s.Loss {
	case SparseCategoricalCrossentropy, CategoricalCrossentropy, MeanSquaredError:
	case "":
		return fail("loss", "missing")
	default:
		return fail("loss", "unknown loss %q (want %s, %s or %s)", s.Loss,
			SparseCategoricalCrossentropy, CategoricalCrossentropy, MeanSquaredError)
	}
	if s.Dtype != "" && s.Dtype != "float32" && s.Dtype != "float64" {
		return fail("dtype", "want float32 or float64, got %q", s.Dtype)
	}
	if s.Pruning != nil {
		if err := s.Pruning.validate(); err != nil {
			return err
		}
	}
	return s.Optimizer.validate()
}

func (o OptimizerSpec) validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("nn: model description: optimizer.%s: %s", field, fmt.Sprintf(format, args...))
	}
	if _, err := DefaultOptimizer(o.Name); err != nil {
		return fail("name", "%v", err)
	}
	if !(o.LearningRate > 0) || !finite(o.LearningRate) {
		return fail("learning_rate", "must be positive and finite, got %v", o.LearningRate)
	}
	checks := []struct {
		field    string
		v        float64
		lo, hi   float64
		openHigh bool
	}{
		{"momentum", o.Momentum, 0, 1, true},
		{"rho", o.Rho, 0, 1, true},
		{"beta_1", o.Beta1, 0, 1, true},
		{"beta_2", o.Beta2, 0, 1, true},
		{"epsilon", o.Epsilon, 0, 1, false},
		{"weight_decay", o.WeightDecay, 0, 1, false},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi || (c.openHigh && c.v == c.hi) || !finite(c.v) {
			interval := "]"
			if c.openHigh {
				interval = ")"
			}
			return fail(c.field, "must be in [%v, %v%s, got %v", c.lo, c.hi, interval, c.v)
		}
	}
	if o.Nesterov && o.Name != "sgd" {
		return fail("nesterov", "applies to sgd only")
	}
	if o.Centered && o.Name != "rmsprop" {
		return fail("centered", "applies to rmsprop only")
	}
	if o.Schedule != nil {
		return o.Schedule.validate()
	}
	return nil
}

// Summary is a one-line description such as
// "784 → dense 10 relu → dense 10 relu → dense 10 softmax; adam lr 0.001".
func (s Spec) Summary() string {
	parts := []string{fmt.Sprint(s.InputShape)}
	if len(s.InputShape) == 1 {
		parts[0] = fmt.Sprint(s.InputShape[0])
	}
	for _, l := range s.Layers {
		switch l.Type {
		case "dense":
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("dense %d %s", l.Units, l.Activation)))
		case "dropout":
			parts = append(parts, fmt.Sprintf("dropout %g", l.Rate))
		case "conv2d":
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("conv2d %d %dx%d %s", l.Filters, l.KernelSize[0], l.KernelSize[1], l.Activation)))
		case "max_pooling2d":
			p := l.PoolSize.or(Pair{2, 2})
			parts = append(parts, fmt.Sprintf("max_pooling2d %dx%d", p[0], p[1]))
		case "simple_rnn", "lstm":
			parts = append(parts, fmt.Sprintf("%s %d", l.Type, l.Units))
		case "reshape":
			parts = append(parts, fmt.Sprintf("reshape %v", l.TargetShape))
		default:
			parts = append(parts, strings.TrimSpace(l.Type+" "+l.Activation))
		}
	}
	out := strings.Join(parts, " → ") + fmt.Sprintf("; %s; %s lr %g", s.Loss, s.Optimizer.Name, s.Optimizer.LearningRate)
	if sc := s.Optimizer.Schedule; sc != nil && sc.Name != "" {
		out += " (" + sc.Name + " schedule)"
	}
	if s.Pruning != nil {
		out += fmt.Sprintf("; pruned to %g", s.Pruning.Sparsity)
	}
	if s.Dtype == "float64" {
		out += "; float64"
	}
	return out
}

// DtypeOrDefault is the model's dtype, float32 when the description leaves
// it out.
func (s Spec) DtypeOrDefault() string {
	if s.Dtype == "" {
		return "float32"
	}
	return s.Dtype
}
