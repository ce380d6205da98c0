package control

import "fmt"

// Lanes is the lanes of the global batch one ring member computes: First
// to First+Count−1.
type Lanes struct{ First, Count int }

// PlanLanes deals the lanes of a global batch to n workers in units of unit
// lanes (the deterministic mode's micro-batch, else 1): contiguous ranges
// in rank order, sizes differing by at most one unit. The global batch, and
// so every step's samples and the epoch's coverage, stay the same whatever
// n is; only who computes which lanes changes.
func PlanLanes(globalBatch, unit, n int) ([]Lanes, error) {
	if unit < 1 || globalBatch%unit != 0 {
		return nil, fmt.Errorf("a unit of %d lanes does not divide the global batch of %d", unit, globalBatch)
	}
	units := globalBatch / unit
	if n < 1 || n > units {
		return nil, fmt.Errorf("%d workers cannot share %d units of %d lanes", n, units, unit)
	}
	out := make([]Lanes, n)
	first := 0
	for r := range out {
		k := units / n
		if r < units%n {
			k++
		}
		out[r] = Lanes{First: first, Count: k * unit}
		first += k * unit
	}
	return out, nil
}

// MaxRingSize is the most workers a job can use: one unit of lanes each.
func MaxRingSize(globalBatch, unit int) int { return globalBatch / unit }
