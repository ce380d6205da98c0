package costmodel

import (
	"math"
	"testing"
)

// TestFitRecoversConstants fits samples generated from known constants and
// predicts a link rate it was not fitted on.
func TestFitRecoversConstants(t *testing.T) {
	truth := Ring{Alpha: 40e-6, Gamma: 1.2e-9}
	var fit, check []Sample
	for _, n := range []int{2, 4, 8} {
		for _, size := range []float64{4 << 10, 256 << 10, 4 << 20, 16 << 20} {
			fit = append(fit, Sample{N: n, Bytes: size, RateBits: 10e9, Seconds: truth.AllReduce(n, size, 10e9, 0)})
			check = append(check, Sample{N: n, Bytes: size, RateBits: 1e9, Seconds: truth.AllReduce(n, size, 1e9, 0)})
		}
	}
	r, err := Fit(fit)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Alpha-truth.Alpha)/truth.Alpha > 0.02 || math.Abs(r.Gamma-truth.Gamma)/truth.Gamma > 0.02 {
		t.Fatalf("fitted %+v, want %+v", r, truth)
	}
	if e := r.RelError(check); e > 0.01 {
		t.Fatalf("relative error %.3f on the unfitted rate", e)
	}
}

// TestFitWithSharedCores fits ranks that share two cores: the constants
// come back, and the sharing slows 8 ranks by 4.
func TestFitWithSharedCores(t *testing.T) {
	truth := Ring{Alpha: 100e-6, Gamma: 2e-9}
	var fit []Sample
	for _, n := range []int{2, 4, 8} {
		for _, size := range []float64{32 << 10, 2 << 20} {
			s := Sample{N: n, Bytes: size, Cores: 2}
			s.Seconds = truth.Predict(s)
			fit = append(fit, s)
		}
	}
	r, err := Fit(fit)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Alpha-truth.Alpha)/truth.Alpha > 0.02 || math.Abs(r.Gamma-truth.Gamma)/truth.Gamma > 0.02 {
		t.Fatalf("fitted %+v, want %+v", r, truth)
	}
	if got := truth.Sharing(8, 2); got.Alpha != 4*truth.Alpha || got.Gamma != 4*truth.Gamma {
		t.Fatalf("8 ranks on 2 cores: %+v", got)
	}
	if got := truth.Sharing(2, 2); got != truth {
		t.Fatalf("2 ranks on 2 cores: %+v", got)
	}
}

func TestFitNeedsSamples(t *testing.T) {
	if _, err := Fit([]Sample{{N: 2, Bytes: 1, Seconds: 1}}); err == nil {
		t.Fatal("fitted one sample")
	}
}

// TestShapes checks the model's limits: one rank costs nothing, the
// bandwidth term approaches 2S/B for large N, efficiency falls with N.
func TestShapes(t *testing.T) {
	r := Ring{Alpha: 10e-6, Gamma: 1e-10}
	if r.AllReduce(1, 1<<20, 1e9, 0) != 0 {
		t.Fatal("one rank should not communicate")
	}
	big := r.AllReduce(1000, 1<<30, 1e9, 0) - 2*999*r.Alpha
	if want := 2 * float64(1<<30) * 8 / 1e9 * 999 / 1000; math.Abs(big-want)/want > 1e-9 {
		t.Fatalf("bandwidth term %v, want %v", big, want)
	}
	s := Step{Compute: 0.01, GradientBytes: 1 << 20}
	prev := 1.0
	for _, n := range []int{2, 4, 16, 256} {
		e := s.Efficiency(r, n, 1e9, 0.0002)
		if e >= prev || e <= 0 {
			t.Fatalf("efficiency %v at N=%d after %v", e, n, prev)
		}
		prev = e
	}
}
