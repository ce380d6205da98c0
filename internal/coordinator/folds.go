package coordinator

import (
	"math/rand/v2"
	"slices"

	"ringtrain/internal/mnist"
)

// crossValidationSplit deals the samples of d into folds parts by a
// permutation of seed and returns all parts but part fold, and part fold.
func crossValidationSplit(d *mnist.Set, folds, fold int, seed uint64) (train, validation *mnist.Set) {
	perm := rand.New(rand.NewPCG(seed, 0xc5)).Perm(d.Count)
	lo, hi := fold*d.Count/folds, (fold+1)*d.Count/folds
	held := perm[lo:hi]
	rest := append(append([]int(nil), perm[:lo]...), perm[hi:]...)
	slices.Sort(held)
	slices.Sort(rest)
	return d.Subset(rest), d.Subset(held)
}
