package nn

// float32Layer is a layer that can hand its outputs to the next layer, and
// take its input gradient from it, in float32: dense layers and
// convolutions of a float32 model, max-pooling and reshapes between them.
// A stack such as conv2d → pooling → conv2d → flatten → dense → dense then
// makes no float64 round trip between its layers.
//
// The model links such neighbours once (link32); a linked layer's forward
// returns nil, its output staying in output32 for the next layer to read,
// and a layer linked to its predecessor returns nil from backward, its
// input gradient staying in inputGrad32. Values cross to and from float64
// layers as float64 slices, as between any other layers.
type float32Layer interface {
	layer
	// produces32 reports whether the layer computes in float32 when its
	// input comes in float32 (in32) or in float64.
	produces32(in32 bool) bool
	// link names the float32 layer whose output32 is the layer's input
	// (nil when its input comes in float64) and the one that reads its
	// output32 and hands back its gradient in inputGrad32 (nil when the
	// next layer takes float64).
	link(prev, next float32Layer)
	// output32 is the last forward pass's output, valid as forward's.
	output32() []float32
	// inputGrad32 is the last backward pass's input gradient.
	inputGrad32() []float32
}

// link32 links the neighbours in layers that exchange float32 values.
func link32(layers []layer) {
	var prev float32Layer // the layer before, when it produces float32
	for i, l := range layers {
		f, ok := l.(float32Layer)
		if !ok {
			prev = nil
			continue
		}
		// The next layer takes float32 when it computes in float32 given it.
		var next float32Layer
		if f.produces32(prev != nil) && i+1 < len(layers) {
			if n, ok := layers[i+1].(float32Layer); ok && n.produces32(true) {
				next = n
			}
		}
		f.link(prev, next)
		prev = nil
		if next != nil {
			prev = f
		}
	}
}

// links32 holds a float32Layer's neighbours (see link).
type links32 struct{ prev, next float32Layer }

func (k *links32) link(prev, next float32Layer) { k.prev, k.next = prev, next }

// links32Of is link32 for a model description: for each layer, whether
// its input comes from a float32 layer (in) and its output goes to one
// (out), as New links them.
func links32Of(spec Spec) (in, out []bool) {
	in, out = make([]bool, len(spec.Layers)), make([]bool, len(spec.Layers))
	produces := func(l LayerSpec, in32 bool) (bool, bool) { // is a float32Layer, produces
		switch l.Type {
		case "conv2d":
			dtype := l.Dtype
			if dtype == "" {
				dtype = spec.Dtype
			}
			return true, dtype != "float64"
		case "dense":
			return true, l.Dtype != "float64" && spec.DtypeOrDefault() != "float64"
		case "max_pooling2d", "flatten", "reshape":
			return true, in32
		}
		return false, false
	}
	for i, l := range spec.Layers {
		in32 := i > 0 && out[i-1]
		if _, p := produces(l, in32); p && i+1 < len(spec.Layers) {
			_, next := produces(spec.Layers[i+1], true)
			out[i] = next
		}
		in[i] = in32
	}
	return in, out
}
