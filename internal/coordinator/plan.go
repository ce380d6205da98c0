package coordinator

import "fmt"

// laneRange is the lanes one ring member computes: first .. first+count−1.
type laneRange struct{ first, count int }

// planLanes deals the lanes of a global batch to n workers in units of unit
// lanes (the deterministic mode's micro-batch, else 1): contiguous ranges in
// rank order, sizes differing by at most one unit. The global batch, and so
// every step's samples and the epoch's coverage, stay the same whatever n
// is; only who computes which lanes changes.
func planLanes(globalBatch, unit, n int) ([]laneRange, error) {
	if unit < 1 || globalBatch%unit != 0 {
		return nil, fmt.Errorf("coordinator: a unit of %d lanes does not divide the global batch of %d", unit, globalBatch)
	}
	units := globalBatch / unit
	if n < 1 || n > units {
		return nil, fmt.Errorf("coordinator: %d workers cannot share %d units of %d lanes", n, units, unit)
	}
	out := make([]laneRange, n)
	first := 0
	for r := range out {
		k := units / n
		if r < units%n {
			k++
		}
		out[r] = laneRange{first: first, count: k * unit}
		first += k * unit
	}
	return out, nil
}

// maxRingSize is the most workers a job can use: one unit of lanes each.
func maxRingSize(globalBatch, unit int) int { return globalBatch / unit }
