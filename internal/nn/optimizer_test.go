package nn

import (
	"math"
	"strings"
	"testing"
)

// TestOptimizersThreeSteps checks three steps of each optimiser against
// values computed by hand (in double precision, outside this package) from
// the published update rules quoted in optimizer.go, from parameters
// [0.5, −1] with the gradients [0.1, −0.2], [0.05, 0.3], [−0.4, 0].
func TestOptimizersThreeSteps(t *testing.T) {
	grads := [][]float64{{0.1, -0.2}, {0.05, 0.3}, {-0.4, 0}}
	def := func(name string) OptimizerSpec {
		s, err := DefaultOptimizer(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(s OptimizerSpec, f func(*OptimizerSpec)) OptimizerSpec { f(&s); return s }
	cases := []struct {
		name string
		spec OptimizerSpec
		want [3][2]float64
	}{
		{"sgd", def("sgd"), [3][2]float64{{0.499, -0.998}, {0.4985, -1.001}, {0.5025, -1.001}}},
		{"sgd momentum", with(def("sgd"), func(s *OptimizerSpec) { s.Momentum = 0.9 }),
			[3][2]float64{{0.499, -0.998}, {0.4976, -0.9992}, {0.50034, -1.00028}}},
		{"sgd nesterov", with(def("sgd"), func(s *OptimizerSpec) { s.Momentum, s.Nesterov = 0.9, true }),
			[3][2]float64{{0.4981, -0.9962}, {0.49634, -1.00028}, {0.502806, -1.001252}}},
		{"sgd weight decay", with(def("sgd"), func(s *OptimizerSpec) { s.WeightDecay = 0.1 }),
			[3][2]float64{{0.4985, -0.997}, {0.4975015, -0.999003}, {0.5010039985, -0.998003997}}},
		{"rmsprop", def("rmsprop"), [3][2]float64{
			{0.49683788044185706, -0.9968377618675612}, {0.49536352498132596, -0.9995103636811438}, {0.49842822271841375, -0.9995103636811438}}},
		{"rmsprop centered momentum", with(def("rmsprop"), func(s *OptimizerSpec) { s.Momentum, s.Centered = 0.5, true }),
			[3][2]float64{{0.4966668518364212, -0.9966667129619985}, {0.4933815528206462, -0.9976880753058675}, {0.494873451211351, -0.998198756477802}}},
		{"adam", def("adam"), [3][2]float64{
			{0.49900003162177664, -0.9990000158111383}, {0.4980678783587934, -0.9992477154544686}, {0.4984893372032789, -0.9994391879958332}}},
		{"adamw", def("adamw"), [3][2]float64{
			{0.49899803162177664, -0.9989960158111383}, {0.49806388236666693, -0.9992397194704054}, {0.49848334895562296, -0.9994271950528921}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := NewOptimizer(c.spec, 2)
			if err != nil {
				t.Fatal(err)
			}
			p := []float64{0.5, -1}
			for step, g := range grads {
				o.Step(p, g)
				for i := range p {
					if d := math.Abs(p[i] - c.want[step][i]); d > 1e-13 {
						t.Errorf("step %d, parameter %d: %.17g, want %.17g", step+1, i, p[i], c.want[step][i])
					}
				}
			}
			if o.Iterations() != 3 {
				t.Errorf("%d iterations, want 3", o.Iterations())
			}
		})
	}
}

func TestOptimizerStateRoundTrip(t *testing.T) {
	spec, _ := DefaultOptimizer("adam")
	a, _ := NewOptimizer(spec, 2)
	p := []float64{1, 2}
	a.Step(p, []float64{0.3, -0.1})
	b, _ := NewOptimizer(spec, 2)
	if err := b.SetState(a.State()); err != nil {
		t.Fatal(err)
	}
	q := append([]float64(nil), p...)
	a.Step(p, []float64{0.2, 0.2})
	b.Step(q, []float64{0.2, 0.2})
	if p[0] != q[0] || p[1] != q[1] {
		t.Fatalf("restored optimiser diverged: %v vs %v", q, p)
	}
	sgdSpec, _ := DefaultOptimizer("sgd")
	c, _ := NewOptimizer(sgdSpec, 2)
	if err := c.SetState(a.State()); err == nil {
		t.Fatal("sgd accepted adam's state")
	}
}

func TestOptimizerPanicsOnLengthMismatch(t *testing.T) {
	spec, _ := DefaultOptimizer("adam")
	o, _ := NewOptimizer(spec, 3)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a gradient of the wrong length")
		}
	}()
	o.Step(make([]float64, 3), make([]float64, 2))
}

func TestScheduleFactors(t *testing.T) {
	cases := []struct {
		s     ScheduleSpec
		spe   int
		steps []uint64
		want  []float64
	}{
		{ScheduleSpec{Name: "step", DecaySteps: 10, DecayRate: 0.5}, 100, []uint64{0, 9, 10, 25}, []float64{1, 1, 0.5, 0.25}},
		{ScheduleSpec{Name: "exponential", DecaySteps: 10, DecayRate: 0.5}, 100, []uint64{0, 5, 20}, []float64{1, math.Sqrt(0.5), 0.25}},
		{ScheduleSpec{Name: "cosine", DecaySteps: 100, Alpha: 0.1}, 100, []uint64{0, 50, 100, 500}, []float64{1, 0.55, 0.1, 0.1}},
		{ScheduleSpec{Name: "constant", WarmupSteps: 4}, 100, []uint64{0, 3, 4, 1000}, []float64{0.25, 1, 1, 1}},
		{ScheduleSpec{Name: "cosine", WarmupEpochs: 0.5, DecayEpochs: 1}, 20, []uint64{0, 9, 10, 20, 30}, []float64{0.1, 1, 1, 0.5, 0}},
	}
	for _, c := range cases {
		if err := c.s.validate(); err != nil {
			t.Fatal(err)
		}
		for i, step := range c.steps {
			if got := c.s.Factor(step, c.spe); math.Abs(got-c.want[i]) > 1e-12 {
				t.Errorf("%+v at step %d: %v, want %v", c.s, step, got, c.want[i])
			}
		}
	}
	var none *ScheduleSpec
	if none.Factor(7, 10) != 1 {
		t.Error("no schedule must leave the rate alone")
	}
	for _, bad := range []string{`{"name":"linear"}`, `{"name":"step","decay_rate":0.5}`, `{"name":"step","decay_steps":5,"decay_rate":1.5}`,
		`{"name":"cosine","decay_steps":5,"alpha":2}`, `{"name":"constant","decay_steps":5}`, `{"name":"cosine","decay_steps":5,"decay_epochs":1}`} {
		spec := `{"input_shape":[2],"layers":[{"type":"dense","units":2}],"loss":"mean_squared_error","optimizer":{"name":"sgd","schedule":` + bad + `}}`
		if _, err := ParseSpec([]byte(spec)); err == nil || !strings.Contains(err.Error(), "optimizer.schedule.") {
			t.Errorf("schedule %s: %v, want an error naming the field", bad, err)
		}
	}
}

// TestFitFollowsSchedule trains with a step schedule: the optimiser's rate
// after the run is the schedule's at the last step.
func TestFitFollowsSchedule(t *testing.T) {
	spec := Spec{InputShape: []int{3}, Layers: []LayerSpec{{Type: "dense", Units: 2, Activation: "softmax"}},
		Loss: SparseCategoricalCrossentropy, Optimizer: OptimizerSpec{Name: "sgd", LearningRate: 0.8,
			Schedule: &ScheduleSpec{Name: "step", DecaySteps: 3, DecayRate: 0.5}}}
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	m.Initialize(1)
	d := &denseSet{x: make([]float64, 3*40), labels: make([]int, 40), width: 3}
	if _, err := m.Fit(d, FitConfig{BatchSize: 4, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	// 10 steps: the last, step 9, is in the fourth interval of 3.
	if got := m.Optimizer().LearningRate(); got != 0.8*0.125 {
		t.Fatalf("rate %v after 10 steps, want %v", got, 0.8*0.125)
	}
}

// denseSet is a data set held as dense rows.
type denseSet struct {
	x      []float64
	labels []int
	width  int
}

func (d *denseSet) Len() int        { return len(d.labels) }
func (d *denseSet) Features() int   { return d.width }
func (d *denseSet) Label(i int) int { return d.labels[i] }
func (d *denseSet) Gather(ids []int, x []float64, labels []int) {
	for r, id := range ids {
		copy(x[r*d.width:(r+1)*d.width], d.x[id*d.width:(id+1)*d.width])
		labels[r] = d.labels[id]
	}
}

// TestFloat32OptimizersTrackFloat64 runs every optimiser in float32 and
// float64 on the same values: the float32 results stay within float32's
// precision of the float64 ones, and each dtype's Step panics on the
// other's optimiser.
func TestFloat32OptimizersTrackFloat64(t *testing.T) {
	for _, name := range []string{"sgd", "rmsprop", "adam", "adamw"} {
		spec, err := DefaultOptimizer(name)
		if err != nil {
			t.Fatal(err)
		}
		spec.Momentum, spec.Centered = 0.9, name == "rmsprop"
		if name == "sgd" {
			spec.Nesterov = true
		}
		const n = 37
		o64, _ := NewOptimizer(spec, n)
		o32, _ := NewOptimizer32(spec, n)
		p64, p32 := make([]float64, n), make([]float32, n)
		for i := range p64 {
			p32[i] = float32(math.Sin(float64(i)))
			p64[i] = float64(p32[i])
		}
		for step := range 5 {
			g64, g32 := make([]float64, n), make([]float32, n)
			for i := range g64 {
				g32[i] = float32(math.Cos(float64(i*(step+1))) * 0.1)
				g64[i] = float64(g32[i])
			}
			o64.Step(p64, g64)
			o32.Step32(p32, g32)
		}
		for i, v := range p64 {
			if d := math.Abs(float64(p32[i]) - v); d > 1e-5*(1+math.Abs(v)) {
				t.Fatalf("%s: parameter %d is %v in float32, %v in float64", name, i, p32[i], v)
			}
		}
		s32, s64 := o32.State(), o64.State()
		if len(s32.Slots) != len(s64.Slots) || s32.Iterations != s64.Iterations {
			t.Fatalf("%s: float32 state %d slots at %d, float64 %d at %d", name, len(s32.Slots), s32.Iterations, len(s64.Slots), s64.Iterations)
		}
		for _, c := range []struct {
			what string
			f    func()
		}{
			{"Step on a float32 optimiser", func() { o32.Step(p64, make([]float64, n)) }},
			{"Step32 on a float64 optimiser", func() { o64.Step32(p32, make([]float32, n)) }},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Fatalf("%s: no panic for %s", name, c.what)
					}
				}()
				c.f()
			}()
		}
	}
}
