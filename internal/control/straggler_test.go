package control

import (
	"testing"
	"time"
)

// TestStragglerAttribution feeds failure reports of a ring of four (a, b,
// c, d; each waits for its left-hand neighbour) and checks who is named.
func TestStragglerAttribution(t *testing.T) {
	members := []*entry{{Member: Member{ID: "a", Addr: "h:1"}}, {Member: Member{ID: "b", Addr: "h:2"}},
		{Member: Member{ID: "c", Addr: "h:3"}}, {Member: Member{ID: "d", Addr: "h:4"}}}
	type rep struct {
		rank     int
		applied  uint64
		frames   uint32
		waiting  bool // it was waiting for its left-hand neighbour
		timedOut bool
		afterMs  int
	}
	for _, c := range []struct {
		name string
		reps []rep
		want string
	}{
		{"the fewest frames starved first", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 1, waiting: true, afterMs: 3}}, "b"},
		{"a witness the abort reached counts", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 1, waiting: true, afterMs: 520}}, "b"},
		{"an earlier step beats fewer frames", []rep{{rank: 1, applied: 8, frames: 0, waiting: true, timedOut: true}, {rank: 2, applied: 7, frames: 5, waiting: true, afterMs: 1}}, "b"},
		{"a late report is no witness", []rep{{rank: 3, applied: 7, frames: 1, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 2, waiting: true, afterMs: 2}, {rank: 2, applied: 7, frames: 0, waiting: true, timedOut: true, afterMs: 2000}}, "c"},
		{"a member not waiting is no witness", []rep{{rank: 2, applied: 7, frames: 0, timedOut: true}, {rank: 0, applied: 7, frames: 3, waiting: true, afterMs: 1}}, "d"},
		{"a neighbour ahead, its frames lost, beats fewer frames", []rep{{rank: 2, applied: 7, frames: 3, waiting: true, timedOut: true}, {rank: 0, applied: 8, frames: 0, waiting: true, afterMs: 2}, {rank: 3, applied: 7, frames: 3, waiting: true, afterMs: 2}, {rank: 1, applied: 7, frames: 3, waiting: true, timedOut: true, afterMs: 3}}, "a"},
		{"a silent neighbour beats fewer frames", []rep{{rank: 3, applied: 7, frames: 2, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 1, waiting: true, afterMs: 2}}, "c"},
		{"ties go to the first report", []rep{{rank: 2, applied: 7, frames: 1, waiting: true, timedOut: true}, {rank: 0, applied: 7, frames: 1, waiting: true, afterMs: 3}}, "b"},
		{"no deadline, no straggler", []rep{{rank: 2, applied: 7, frames: 1, waiting: true}, {rank: 3, applied: 7, frames: 2, waiting: true}}, ""},
		{"no report, no straggler", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &ring{id: 1, members: members}
			for _, x := range c.reps {
				rp := Report{Rank: x.rank, Worker: members[x.rank].ID, Applied: x.applied, Status: ReportFailed,
					TimedOut: x.timedOut, Frames: x.frames, WaitedFor: (x.rank + 3) % 4}
				if x.waiting {
					rp.Waiting = time.Second
				}
				r.failures = append(r.failures, failure{rp, time.Hour + time.Duration(x.afterMs)*time.Millisecond})
			}
			slow, cause := straggler(r, time.Second)
			got := ""
			if slow != nil {
				got = slow.ID
			}
			if got != c.want {
				t.Fatalf("straggler %q (%s), want %q", got, cause, c.want)
			}
		})
	}
}

func TestPlanLanesCoversTheBatch(t *testing.T) {
	for _, c := range []struct{ batch, unit, n int }{{128, 1, 3}, {128, 1, 4}, {96, 4, 5}, {32, 1, 32}, {7, 1, 2}} {
		lanes, err := PlanLanes(c.batch, c.unit, c.n)
		if err != nil {
			t.Fatal(err)
		}
		next, lo, hi := 0, c.batch, 0
		for _, l := range lanes {
			if l.First != next || l.Count%c.unit != 0 || l.Count == 0 {
				t.Fatalf("%+v: lanes %v are not contiguous whole units", c, lanes)
			}
			next += l.Count
			lo, hi = min(lo, l.Count), max(hi, l.Count)
		}
		if next != c.batch || hi-lo > c.unit {
			t.Fatalf("%+v: lanes %v do not cover the batch evenly", c, lanes)
		}
	}
	if _, err := PlanLanes(8, 1, 9); err == nil {
		t.Fatal("nine workers shared eight lanes")
	}
	if _, err := PlanLanes(96, 5, 2); err == nil {
		t.Fatal("a unit of 5 lanes was accepted for a batch of 96")
	}
}
