package control

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// NonFiniteStep is the error of a step that stopped the job: its gradient
// was NaN or ±Inf on the workers named. When no worker says its own batch
// was at fault, Lost names the members lost before they could say, and
// Reason is what the first member to report the step said of it (a sum
// that overflowed the wire format while every gradient was finite).
type NonFiniteStep struct {
	Step    uint64
	Workers []string
	Lost    []string
	Reason  string
}

func (e *NonFiniteStep) Error() string {
	const causes = "(a diverging learning rate or corrupt data are the usual causes; -nonfinite skip skips such steps instead)"
	switch {
	case len(e.Workers) > 0:
		return fmt.Sprintf("the gradient of step %d was not finite (NaN or ±Inf) on %s; each worker's log names the sample ids of its batch "+
			"(in deterministic mode a gradient beyond the fixed-point range counts as not finite) %s",
			e.Step, strings.Join(slices.Sorted(slices.Values(e.Workers)), ", "), causes)
	case len(e.Lost) > 0:
		return fmt.Sprintf("the gradient of step %d was not finite (NaN or ±Inf) on none of the workers that reported it; lost before saying: %s %s",
			e.Step, strings.Join(e.Lost, ", "), causes)
	}
	return fmt.Sprintf("the gradient of step %d was not finite on any worker's own batch: %s", e.Step, e.Reason)
}

// TooFewWorkers is the error of a wait for workers that timed out: Need
// were needed, Joined came; Lost lists the workers the job lost ("w at
// step N (cause)").
type TooFewWorkers struct {
	Waited time.Duration
	Need   int
	Joined []string
	Lost   []string
}

func (e *TooFewWorkers) Error() string {
	msg := fmt.Sprintf("waited %v for %d workers, %d joined", e.Waited.Round(time.Second), e.Need, len(e.Joined))
	if len(e.Joined) > 0 {
		msg += " (" + strings.Join(e.Joined, ", ") + ")"
	}
	msg += fmt.Sprintf("; missing %d", e.Need-len(e.Joined))
	if len(e.Lost) > 0 {
		msg += "; lost: " + strings.Join(e.Lost, ", ")
	}
	return msg
}

// CompareIDs orders worker ids with embedded numbers numerically, so that
// worker-2 comes before worker-10: the order of ranks in a new ring.
func CompareIDs(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			if c := compareNumbers(da, db); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return strings.Compare(a[:1], b[:1])
		}
		a, b = a[1:], b[1:]
	}
	return strings.Compare(a, b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
