package nn

// Footprint is an upper estimate of the memory a model of a description
// needs, in bytes, from the shapes of its layers: what does not depend on
// the batch, and what every sample of a batch adds. The per-sample figures
// count every buffer a layer keeps between passes (outputs, pre-activations,
// unfolded convolution windows, recurrent states, their gradients), at 8
// bytes a value, and float32 copies at 4; the model's batch input, dense
// input and loss gradient come on top, and a quarter more on all.
// TestFootprintBoundsTheHeap holds it to between 1 and 3 times what a
// model and its batch hold after a pass.
type Footprint struct {
	// Params is the bytes of the parameters, their gradients and the
	// optimiser's slots.
	Params uint64
	// Snapshot is the bytes of a Snapshot of the model: its parameters
	// and optimiser slots, in its dtype. NumParams is the number of
	// parameters.
	Snapshot, NumParams uint64
	// TrainSample and EvalSample are the bytes a sample adds to a training
	// step (forward and backward) and to an evaluation (forward only).
	TrainSample, EvalSample uint64
}

// Training is the estimate of a model that trains on batches of rows.
func (f Footprint) Training(rows int) uint64 { return f.Params + uint64(rows)*f.TrainSample }

// Worker is the estimate of a distributed worker's model that trains on
// batches of rows: the model, the backup that undoes a step (Snapshot),
// and the all-reduce's buffers beyond the gradient the model holds, 8
// bytes a parameter (the deterministic mode's fixed-point sums, or the
// compressed mode's residual and float32 copy).
func (f Footprint) Worker(rows int) uint64 { return f.Training(rows) + f.Snapshot + 8*f.NumParams }

// Evaluation is the estimate of a model that evaluates rows at a time.
func (f Footprint) Evaluation(rows int) uint64 { return f.Params + uint64(rows)*f.EvalSample }

// EstimateFootprint returns the footprint of a model of spec, which must be
// valid.
func EstimateFootprint(spec Spec) (Footprint, error) {
	geo, err := spec.shapes()
	if err != nil {
		return Footprint{}, err
	}
	// params counts the values of the parameters, shadow those of the
	// layers of a float32 model given "dtype": "float64", gather those of
	// a float32 first dense layer's kernel (dense32).
	var params, shadow, gather uint64
	in, _ := size(spec.InputShape)
	// The batch's dense and sparse inputs, the model's dense copy, the
	// labels; the loss gradient (training) and the outputs' copy.
	train, eval := 3*uint64(in)+1, 3*uint64(in)+1
	out := in
	in32, out32 := links32Of(spec)
	var fixed uint64 // bytes: float32 convolutions' chunks of windows
	for i, l := range spec.Layers {
		g := geo[i]
		params += g.params
		switch {
		case l.Dtype == "float64":
			shadow += g.params
		case i == 0 && l.Type == "dense" && l.Units >= narrowUnits:
			gather += g.params
		}
		t, e := layerValues(l, g, in32[i], out32[i], spec.Dtype)
		if l.Type == "conv2d" && (l.Dtype == "float32" || l.Dtype == "" && spec.Dtype != "float64") {
			fixed += 2 * max(chunkBytes, 4*convWindows(l, g))
		}
		train, eval = train+t, eval+e
		out, _ = size(g.out)
	}
	train, eval = train+2*uint64(out), eval+2*uint64(out)
	slots := uint64(len(slotNames(spec.Optimizer)))
	// A float64 model: parameters, gradients and slots, and float32
	// copies of the parameters and gradients for the float32 products. A
	// float32 model: the same in float32, a float64 copy of the parameters
	// and gradients of the layers that compute on float64 ones, and a
	// first dense layer's kernel and its gradient gathered to the nonzero
	// columns (dense32). A quarter more on all for the allocator's
	// rounding and the products' scratch.
	bytes, width := 8*params*(3+slots), uint64(8)
	if spec.DtypeOrDefault() != "float64" {
		bytes, width = 4*params*(2+slots)+16*shadow+8*gather, 4
	}
	margin := func(values uint64) uint64 { return values * 8 * 5 / 4 }
	return Footprint{Params: bytes*5/4 + fixed, Snapshot: width * params * (1 + slots), NumParams: params,
		TrainSample: margin(train), EvalSample: margin(eval)}, nil
}

// layerValues is the values a layer keeps per sample in training and in
// evaluation (float32 copies counted as half a value); in32 and out32 say
// whether its input comes from, and its output goes to, a float32 layer
// (links32Of), dtype is the model's.
func layerValues(l LayerSpec, g layerGeometry, in32, out32 bool, dtype string) (train, eval uint64) {
	i, _ := size(g.in)
	o, _ := size(g.out)
	in, out := uint64(i), uint64(o)
	// a float64 copy of the output for a float64 successor, and of the
	// input gradient for a float64 predecessor.
	var y64, dx64 uint64
	if !out32 {
		y64 = out
	}
	if !in32 {
		dx64 = in
	}
	switch l.Type {
	case "dense":
		// z, y, dz, dx, and float32 copies of the input, z, dz and dx (a
		// layer chained to float32 neighbours, links32Of, with ReLU or
		// no activation keeps only the float32 ones); with another
		// activation before a float32 layer, the float32 output too; a
		// softmax's log-sum-exp, one value a sample.
		var extra uint64
		if out32 && l.Activation != "relu" && l.Activation != "linear" && l.Activation != "" {
			extra = (out + 1) / 2
		}
		if l.Activation == "softmax" {
			extra++
		}
		return 4*out + 2*in + extra, 2*out + (in+out+1)/2 + extra
	case "conv2d":
		if l.Dtype == "float64" || l.Dtype == "" && dtype == "float64" {
			// y, z, dz, dx, and the windows unfolded (col) with their
			// gradient (dcol).
			col := convWindows(l, g)
			return 3*out + in + 2*col, 2*out + col
		}
		// float32 y, dy, dz and dx and the input narrowed; float64 y for a
		// float64 successor, y and dy for activations other than ReLU,
		// and dx for a float64 predecessor; the windows come a chunk at
		// a time (EstimateFootprint).
		if l.Activation != "relu" && l.Activation != "linear" && l.Activation != "" {
			y64 = 2 * out
		}
		return (3*out+2*in+1)/2 + y64 + dx64, (out+in+1)/2 + y64
	case "max_pooling2d":
		if in32 {
			// float32 y, dy and dx.
			return out + (in+1)/2 + y64, (out+1)/2 + y64
		}
		// y, dx
		return out + in, out
	case "flatten", "reshape":
		if in32 {
			return y64 + (in+1)/2, y64
		}
		return 0, 0 // views of their input
	case "dropout":
		// mask, y, dx
		return 3 * out, 2 * out
	case "activation":
		return 2 * out, out
	case "simple_rnn", "lstm":
		return recurrentValues(l, g)
	}
	return 0, 0
}

// convWindows is the values of a convolution's unfolded windows for one
// sample: positions × window × channels.
func convWindows(l LayerSpec, g layerGeometry) uint64 {
	o, _ := size(g.out)
	positions := uint64(o) / uint64(max(l.Filters, 1))
	k := l.KernelSize.or(Pair{1, 1})
	return positions * uint64(g.in[len(g.in)-1]) * uint64(k[0]*k[1])
}

// recurrentValues is the values a simple_rnn or lstm layer keeps per sample:
// its states and gates at every time step, the input projections, their
// gradients and the dropout masks.
func recurrentValues(l LayerSpec, g layerGeometry) (train, eval uint64) {
	steps, features := uint64(g.in[0]), uint64(g.in[len(g.in)-1])
	u := uint64(l.Units)
	gates := u
	if l.Type == "lstm" {
		gates = 4 * u
	}
	// h and c at every step, the last pre-activation and state, the
	// gates and cell activations, the output at every step, the input
	// projections, the masked input and the masks; float32 copies of the
	// input, the projections, the states and the pre-activation.
	fwd := 2*(steps+1)*u + gates + u + steps*gates + 2*steps*u + steps*gates + features + steps*features + u +
		(steps*features+steps*gates+steps*u+gates+1)/2
	// dx, the state gradients, dz and its sums, and their float32 copies.
	bwd := steps*features + 2*u + 2*steps*gates + (2*steps*gates+u+steps*features+1)/2
	return fwd + bwd, fwd
}
