package charts

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/plot"
)

func mustPlot(t *testing.T, c Chart) *plot.Plot {
	t.Helper()
	p, err := c.plot()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAxesLeaveMarginWithinBounds: every point lies inside the axes, not
// on the frame where its marker would be cut, and an accuracy axis stays
// within [0, 1] even for one point or values next to 1.
func TestAxesLeaveMarginWithinBounds(t *testing.T) {
	for name, c := range map[string]Chart{
		"one point":  {XRange: [2]float64{0, 0.32}, YBounds: [2]float64{0, 1}, Series: []Series{{X: []float64{0.32}, Y: []float64{0.8546}}}},
		"next to 1":  {YBounds: [2]float64{0, 1}, Series: []Series{{X: []float64{1, 2, 3}, Y: []float64{0.95, 0.99, 0.999}}}},
		"many steps": {YFromZero: true, Series: []Series{{X: []float64{0.01, 1, 2, 3}, Y: []float64{2.3, 0.5, 0.3, 0.25}}}},
	} {
		p := mustPlot(t, c)
		s := c.Series[0]
		if p.X.Min >= slices.Min(s.X) || p.X.Max <= slices.Max(s.X) || p.Y.Min >= slices.Min(s.Y) || p.Y.Max <= slices.Max(s.Y) {
			t.Errorf("%s: axes x [%v, %v], y [%v, %v] leave no margin around the data", name, p.X.Min, p.X.Max, p.Y.Min, p.Y.Max)
		}
		if c.YBounds[1] > 0 && (p.Y.Min < 0 || p.Y.Max > 1) {
			t.Errorf("%s: accuracy axis [%v, %v] leaves [0, 1]", name, p.Y.Min, p.Y.Max)
		}
	}
}

// TestLegendGoesWhereTheDataAreNot: a rising curve leaves the top left
// free, a falling one the top right; a curve under a reference line at the
// top gets room made above it.
func TestLegendGoesWhereTheDataAreNot(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4, 5}
	rising := mustPlot(t, Chart{Series: []Series{{Name: "accuracy", X: x, Y: []float64{0.1, 0.5, 0.7, 0.8, 0.85, 0.9}}}})
	if !rising.Legend.Top || !rising.Legend.Left {
		t.Errorf("rising curve: legend top=%v left=%v, want top left", rising.Legend.Top, rising.Legend.Left)
	}
	falling := mustPlot(t, Chart{Series: []Series{{Name: "loss", X: x, Y: []float64{2.3, 0.9, 0.5, 0.4, 0.35, 0.3}}}})
	if !falling.Legend.Top || falling.Legend.Left {
		t.Errorf("falling curve: legend top=%v left=%v, want top right", falling.Legend.Top, falling.Legend.Left)
	}
	flat := Chart{Series: []Series{{Name: "busbw", X: x, Y: []float64{0.01, 0.02, 0.03, 0.03, 0.04, 0.05}}},
		HLines: map[string]float64{"ceiling": 2.2}}
	if p := mustPlot(t, flat); !p.Legend.Top || (2.2-p.Y.Min)/(p.Y.Max-p.Y.Min) > 0.85 {
		t.Errorf("flat curve under a ceiling line: y axis [%v, %v], legend top=%v: no room above the line at 2.2", p.Y.Min, p.Y.Max, p.Legend.Top)
	}
}

// TestByteTicksAreLabelled: a byte-size axis has labels at powers of two,
// nine at most, for a quick sweep as for the full one.
func TestByteTicksAreLabelled(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var out []string
		for _, tk := range (byteTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	if got := labels(980, 4300); !slices.Equal(got, []string{"1 KiB", "2 KiB", "4 KiB"}) {
		t.Errorf("quick sweep: %q", got)
	}
	full := labels(980, 70<<20)
	if len(full) > 9 || full[0] != "1 KiB" || full[len(full)-1] != "64 MiB" {
		t.Errorf("full sweep: %q", full)
	}
}

// TestTickLabelsAreDistinct: a narrow range gets enough decimals for no
// two labels to read the same.
func TestTickLabelsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, tk := range (distinctTicks{}).Ticks(1.249, 1.261) {
		if tk.Label != "" && seen[tk.Label] {
			t.Errorf("label %q twice", tk.Label)
		}
		seen[tk.Label] = true
	}
}

// TestSaveLeavesOutNonFinitePoints: a NaN (a target not reached) is no
// point, not an error.
func TestSaveLeavesOutNonFinitePoints(t *testing.T) {
	c := Chart{XTicks: []float64{1, 2, 4}, Series: []Series{{Name: "s", X: []float64{1, 2, 4}, Y: []float64{1, math.NaN(), 3}}}}
	if err := Save(filepath.Join(t.TempDir(), "c.png"), c); err != nil {
		t.Fatal(err)
	}
}
