package nn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpecRoundTrip(t *testing.T) {
	s := KerasMNIST()
	s.Layers[0].KernelRegularizer = &Regularizer{L2: 0.001}
	s.Layers = append(s.Layers[:1], append([]LayerSpec{{Type: "dropout", Rate: 0.2}}, s.Layers[1:]...)...)
	got, err := ParseSpec(s.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Fatalf("round trip changed the spec (-want +got):\n%s", diff)
	}
}

func TestParseSpecDefaults(t *testing.T) {
	got, err := ParseSpec([]byte(`{
		"input_shape": [784],
		"layers": [{"type": "dense", "units": 10, "activation": "relu", "kernel_regularizer": "l2"},
		           {"type": "dense", "units": 10, "activation": "softmax"}],
		"loss": "sparse_categorical_crossentropy",
		"optimizer": {"name": "adam"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := DefaultOptimizer("adam")
	if got.Optimizer != want {
		t.Fatalf("optimizer %+v, want Keras defaults %+v", got.Optimizer, want)
	}
	if got.Layers[0].KernelRegularizer.L2 != 0.01 {
		t.Fatalf(`"l2" regularizer gave %+v, want l2 0.01`, got.Layers[0].KernelRegularizer)
	}
	opt, _ := ParseSpec([]byte(`{"input_shape":[2],"layers":[{"type":"dense","units":1}],"loss":"mean_squared_error",
		"optimizer":{"name":"sgd","momentum":0.9}}`))
	if opt.Optimizer.LearningRate != 0.01 || opt.Optimizer.Momentum != 0.9 {
		t.Fatalf("sgd with momentum parsed as %+v", opt.Optimizer)
	}
}

func TestParseSpecErrorsNameTheField(t *testing.T) {
	base := func(layers, loss, opt string) string {
		return `{"input_shape":[784],"layers":[` + layers + `],"loss":"` + loss + `","optimizer":` + opt + `}`
	}
	okLayer := `{"type":"dense","units":10,"activation":"softmax"}`
	scce := SparseCategoricalCrossentropy
	adam := `{"name":"adam"}`
	cases := []struct{ json, want string }{
		{`{`, "unexpected EOF"},
		{base(`{"type":"dense","units":0}`, scce, adam), "layers[0].units: must be at least 1, got 0"},
		{base(okLayer+`,{"type":"dense","unit":10}`, scce, adam), `layers[1]: unknown field "unit"`},
		{base(`{"type":"dense","units":"ten"}`, scce, adam), "layers[0].units: want int"},
		{base(`{"type":"dense","units":10,"activation":"swish"}`, scce, adam), `layers[0].activation: unknown activation "swish"`},
		{base(`{"type":"dense","units":10,"kernel_initializer":"ones"}`, scce, adam), "layers[0].kernel_initializer"},
		{base(`{"type":"dense","units":10,"kernel_regularizer":{"l2":-1}}`, scce, adam), "layers[0].kernel_regularizer"},
		{base(`{"type":"dropout","rate":1}`, scce, adam), "layers[0].rate: must be in [0, 1)"},
		{base(`{"type":"conv9d"}`, scce, adam), `layers[0].type: unknown layer type "conv9d"`},
		{base(okLayer, "hinge", adam), `loss: unknown loss "hinge"`},
		{base(okLayer, scce, `{"name":"adagrad"}`), `optimizer.name: unknown optimizer "adagrad"`},
		{base(okLayer, scce, `{"name":"adam","learning_rate":-1}`), "optimizer.learning_rate: must be positive"},
		{base(okLayer, scce, `{"name":"adam","beta_1":1}`), "optimizer.beta_1: must be in [0, 1)"},
		{base(okLayer, scce, `{"name":"adam","momentum_typo":1}`), `optimizer: unknown field "momentum_typo"`},
		{base(okLayer, scce, `{"name":"adam","nesterov":true}`), "optimizer.nesterov: applies to sgd only"},
		{`{"input_shape":[0],"layers":[` + okLayer + `],"loss":"` + scce + `","optimizer":` + adam + `}`, "input_shape[0]: must be at least 1"},
		{`{"input_shape":[784],"layers":[],"loss":"` + scce + `","optimizer":` + adam + `}`, "layers: a model needs at least one layer"},
		{`{"input_shape":[784],"layers":[` + okLayer + `],"loss":"` + scce + `"}`, "optimizer: missing"},
		{`{"input_shape":[100000,100000],"layers":[` + okLayer + `],"loss":"` + scce + `","optimizer":` + adam + `}`, "input_shape: more than 16777216 values per sample"},
		{base(`{"type":"dense","units":100000}`, scce, adam), "layers[0]: the model would have more than 67108864 parameters"},
		{base(`{"type":"dense","units":9223372036854775807}`, scce, adam), "layers[0].units: more than 16777216"},
		{base(`{"type":"conv2d","filters":8,"kernel_size":3}`, scce, adam), "layers[0].type: conv2d takes [rows, columns, channels], and its input has shape [784]: add a reshape layer"},
		{`{"input_shape":[28,28,1],"layers":[{"type":"conv2d","filters":8,"kernel_size":3},` + okLayer + `],"loss":"` + scce + `","optimizer":` + adam + `}`,
			"layers[1].type: dense takes a flat input, and its input has shape [26 26 8]: add a flatten layer"},
		{`{"input_shape":[4,4,1],"layers":[{"type":"conv2d","filters":8,"kernel_size":5}],"loss":"` + scce + `","optimizer":` + adam + `}`,
			"layers[0].kernel_size: [5 5] is larger than the input's 4×4 with valid padding"},
		{base(`{"type":"conv2d","filters":8,"kernel_size":[3]}`, scce, adam), "layers[0].kernel_size: want two positive numbers"},
		{base(`{"type":"conv2d","filters":8,"kernel_size":3,"padding":"full"}`, scce, adam), `layers[0].padding: want valid or same, got "full"`},
		{base(`{"type":"reshape","target_shape":[28,27]}`, scce, adam), "layers[0].target_shape: [28 27] does not hold the input's 784 values"},
		{base(`{"type":"reshape","target_shape":[28,28]},{"type":"lstm","units":8,"activation":"softmax"}`, scce, adam), "layers[1].activation: softmax is not element-wise"},
		{base(`{"type":"lstm","units":8}`, scce, adam), "layers[0].type: lstm takes [steps, features], and its input has shape [784]"},
		{base(`{"type":"max_pooling2d","units":3}`, scce, adam), "layers[0].units: does not apply to max_pooling2d layers"},
		{base(`{"type":"dense","units":10,"recurrent_dropout":0.5}`, scce, adam), "layers[0].recurrent_dropout: does not apply to dense layers"},
	}
	for _, c := range cases {
		_, err := ParseSpec([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSpec(%s)\n  error %v\n  want one containing %q", c.json, err, c.want)
		}
	}
}

// FuzzParseSpec feeds arbitrary bytes to the model-description parser: it
// must not panic, and a description it accepts must build a model (within
// the size bounds) and survive a JSON round trip unchanged.
func FuzzParseSpec(f *testing.F) {
	f.Add(KerasMNIST().JSON())
	f.Add([]byte(`{"input_shape":[2,3],"layers":[{"type":"dense","units":4,"kernel_regularizer":"l1_l2"},{"type":"dropout","rate":0.5},
		{"type":"activation","activation":"tanh"}],"loss":"mean_squared_error","optimizer":{"name":"sgd","momentum":0.9,"nesterov":true}}`))
	f.Add([]byte(`{"input_shape":[784],"layers":[{"type":"dense","units":0}]}`))
	f.Add([]byte(`{"input_shape":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel_size":3,"strides":2,"padding":"same","activation":"relu"},
		{"type":"max_pooling2d","pool_size":[2,2]},{"type":"flatten"},{"type":"dense","units":10,"activation":"softmax"}],
		"loss":"sparse_categorical_crossentropy","optimizer":{"name":"adam"}}`))
	f.Add([]byte(`{"input_shape":[784],"layers":[{"type":"reshape","target_shape":[28,28]},{"type":"lstm","units":8,"dropout":0.2,"recurrent_dropout":0.2,
		"return_sequences":true},{"type":"simple_rnn","units":4},{"type":"dense","units":10,"activation":"softmax"}],
		"loss":"sparse_categorical_crossentropy","optimizer":{"name":"rmsprop"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		if specParams(s) > 1<<20 {
			return // valid, but too big to build many times over
		}
		if _, err := New(s); err != nil {
			t.Fatalf("ParseSpec accepted a description New rejects: %v", err)
		}
		again, err := ParseSpec(s.JSON())
		if err != nil {
			t.Fatalf("the description does not read back: %v\n%s", err, s.JSON())
		}
		if diff := cmp.Diff(s, again); diff != "" {
			t.Fatalf("round trip changed the description (-first +second):\n%s", diff)
		}
	})
}

// specParams counts a valid description's parameters without building it.
func specParams(s Spec) int {
	geo, err := s.shapes()
	if err != nil {
		panic(err)
	}
	n := 0
	for _, g := range geo {
		n += int(g.params)
	}
	return n
}
