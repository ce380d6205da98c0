// Package sampler defines the order in which training samples are visited,
// in a way that does not depend on how many workers share the work.
//
// A Plan deals the samples, after one seeded shuffle, round-robin into B
// lanes, where B is the global batch size: lane l holds the samples at
// positions l, l+B, l+2B, ... of the shuffled order. Global step t of epoch e
// takes one sample from every lane: the t-th element of the lane after the
// lane's own shuffle for epoch e, seeded by (seed, epoch, lane). A batch is
// therefore the same set of samples, in lane order, whether one process trains
// on all lanes or N workers each own B/N consecutive lanes; a worker's shard is
// the union of its lanes and never changes during a job.
//
// Every epoch has ⌊n/B⌋ steps, the length of the shortest lane. When B does
// not divide n, the n mod B longer lanes each skip one sample per epoch, a
// different one every epoch (the last partial global batch is dropped).
package sampler

import (
	"fmt"
	"math/rand/v2"
)

// Plan is the assignment of n samples to the lanes of a global batch.
type Plan struct {
	lanes [][]int
	seed  uint64
}

// NewPlan deals the sample indices 0..n-1 into globalBatch lanes after a
// shuffle seeded by seed.
func NewPlan(n, globalBatch int, seed uint64) (*Plan, error) {
	if globalBatch < 1 {
		return nil, fmt.Errorf("sampler: global batch %d must be at least 1", globalBatch)
	}
	if globalBatch > n {
		return nil, fmt.Errorf("sampler: global batch %d is larger than the %d samples", globalBatch, n)
	}
	order := rand.New(rand.NewPCG(seed, 0x5eed_0f_1a9e5)).Perm(n)
	lanes := make([][]int, globalBatch)
	for p, id := range order {
		lanes[p%globalBatch] = append(lanes[p%globalBatch], id)
	}
	return &Plan{lanes: lanes, seed: seed}, nil
}

// GlobalBatch is the number of lanes.
func (p *Plan) GlobalBatch() int { return len(p.lanes) }

// Lane returns the samples of lane l in their dealt order. The caller must
// not modify it.
func (p *Plan) Lane(l int) []int { return p.lanes[l] }

// StepsPerEpoch is the number of global steps in an epoch: the length of the
// shortest lane.
func (p *Plan) StepsPerEpoch() int { return len(p.lanes[len(p.lanes)-1]) }

// Range returns the lanes [first, first+count) for a worker that owns them.
// It panics if the range is outside the plan.
func (p *Plan) Range(first, count int) *Lanes {
	if first < 0 || count < 1 || first+count > len(p.lanes) {
		panic(fmt.Sprintf("sampler: lanes [%d, %d) outside a plan of %d", first, first+count, len(p.lanes)))
	}
	return &Lanes{First: first, Members: p.lanes[first : first+count], Steps: p.StepsPerEpoch(), Seed: p.seed}
}

// Lanes is the part of a plan one worker owns: lanes First, First+1, ...
// holding the sample indices in Members. It is all a worker needs to draw its
// share of every global batch.
type Lanes struct {
	First   int
	Members [][]int
	Steps   int
	Seed    uint64
}

// Samples returns every sample index the lanes hold, lane after lane.
func (l *Lanes) Samples() []int {
	var out []int
	for _, m := range l.Members {
		out = append(out, m...)
	}
	return out
}

// Epoch returns the order of the lanes for epoch e.
func (l *Lanes) Epoch(e int) *Epoch {
	ep := &Epoch{members: make([][]int, len(l.Members)), steps: l.Steps}
	for i, m := range l.Members {
		lane := uint64(l.First + i)
		r := rand.New(rand.NewPCG(l.Seed^0x9e3779b97f4a7c15, uint64(e)<<32|lane))
		shuffled := append([]int(nil), m...)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		ep.members[i] = shuffled
	}
	return ep
}

// Epoch is the visiting order of some lanes during one epoch.
type Epoch struct {
	members [][]int
	steps   int
}

// Batch appends to dst the samples of step t, one per lane in lane order, and
// returns the extended slice. It panics if t is not a step of the epoch.
func (e *Epoch) Batch(t int, dst []int) []int {
	if t < 0 || t >= e.steps {
		panic(fmt.Sprintf("sampler: step %d outside an epoch of %d steps", t, e.steps))
	}
	for _, m := range e.members {
		dst = append(dst, m[t])
	}
	return dst
}
