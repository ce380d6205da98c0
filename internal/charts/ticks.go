package charts

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
)

// distinctTicks are gonum's default ticks, labelled with as many decimals
// as it takes for no two labels to read the same (1.255 and 1.26, not 1.26
// twice).
type distinctTicks struct{}

func (distinctTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	var majors []float64
	for _, t := range ticks {
		if t.Label != "" {
			majors = append(majors, t.Value)
		}
	}
	prec := labelPrecision(majors)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = formatTick(t.Value, prec)
		}
	}
	return ticks
}

// labelPrecision is the fewest decimals that label every value exactly
// enough and distinctly.
func labelPrecision(values []float64) int {
	for prec := 0; prec < 8; prec++ {
		seen := map[string]bool{}
		ok := true
		for _, v := range values {
			s := formatTick(v, prec)
			back, _ := strconv.ParseFloat(s, 64)
			if seen[s] || math.Abs(back-v) > 1e-9*max(1, math.Abs(v)) {
				ok = false
				break
			}
			seen[s] = true
		}
		if ok {
			return prec
		}
	}
	return 8
}

func formatTick(v float64, prec int) string {
	if a := math.Abs(v); a >= 1e6 || (a > 0 && a < 1e-4) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// valueTicks puts a labelled tick at each value and nowhere else.
type valueTicks []float64

func (v valueTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for _, x := range v {
		if x >= lo && x <= hi && !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == x }) {
			ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
		}
	}
	return ticks
}

// byteTicks mark the powers of two of a logarithmic axis of byte sizes,
// labelling at most nine of them (1 KiB, 4 KiB, ..., 64 MiB).
type byteTicks struct{}

func (byteTicks) Ticks(lo, hi float64) []plot.Tick {
	first, last := int(math.Ceil(math.Log2(lo))), int(math.Floor(math.Log2(hi)))
	step := 1
	for (last-first)/step+1 > 9 {
		step *= 2
	}
	var ticks []plot.Tick
	for e := first; e <= last; e++ {
		t := plot.Tick{Value: math.Exp2(float64(e))}
		if (e-first)%step == 0 {
			t.Label = ByteSize(int64(t.Value))
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// ByteSize writes a size in bytes with binary units: 512 B, 4 KiB, 1 MiB.
func ByteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
