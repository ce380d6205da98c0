package control

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// show writes an action as one line, for golden lists.
func show(a Action) string {
	ids := func(ms []Member) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.ID)
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	switch a := a.(type) {
	case SetTimer:
		return fmt.Sprintf("timer %v %v", a.Timer, a.After)
	case StopTimer:
		return fmt.Sprintf("stop %v", a.Timer)
	case StartRing:
		var s []string
		for _, p := range a.Places {
			x := p.Member.ID
			switch {
			case p.FetchState:
				x += "(fetch)"
			case p.RestoreBackup:
				x += "(rollback)"
			}
			if p.UploadState {
				x += "(upload)"
			}
			s = append(s, x)
		}
		return fmt.Sprintf("start ring %d at %d: %s", a.Ring, a.Start, strings.Join(s, " "))
	case StoreState:
		return fmt.Sprintf("store ring %d from step %d", a.Ring, a.Step)
	case Pause:
		if a.Checkpoint {
			return fmt.Sprintf("pause ring %d %s with a checkpoint: %s", a.Ring, ids(a.To), a.Why)
		}
		return fmt.Sprintf("pause ring %d %s: %s", a.Ring, ids(a.To), a.Why)
	case Abort:
		return fmt.Sprintf("abort ring %d %s: %s", a.Ring, ids(a.To), a.Reason)
	case Release:
		return "release " + a.Member.ID
	case Drop:
		return fmt.Sprintf("drop %s %s (rank %d): %v", [...]string{"waiting", "lost", "silent"}[a.Reason], a.Member.ID, a.Rank, a.Cause)
	case Change:
		verb := "change"
		if a.Amend {
			verb = "amend"
		}
		s := fmt.Sprintf("%s %s %s ring %d step %d", verb, a.Kind, a.Worker, a.Ring, a.Step)
		if a.Cause != "" {
			s += ": " + a.Cause
		}
		return s
	case MemberFailed:
		return fmt.Sprintf("member failed %s waiting for %q", a.Worker, a.WaitingFor)
	case RingFailed:
		return fmt.Sprintf("ring %d failed (%s, reported %v, waiting for %q): %s", a.Ring, a.Worker, a.Reported, a.WaitingFor, a.Cause)
	case LateLoss:
		return fmt.Sprintf("late loss %s: %v", a.Member.ID, a.Cause)
	case IgnoredReport:
		return fmt.Sprintf("ignored %s ring %d lost %v", a.Worker, a.Ring, a.Lost)
	case RejectedReport:
		return fmt.Sprintf("rejected %s: %v", a.Worker, a.Err)
	case StepReport:
		s := fmt.Sprintf("steps %d-%d rank %d", a.First, a.Last, a.Rank)
		if a.Recovered {
			s += fmt.Sprintf(" recovered after %v", a.Recovery)
		}
		return s
	case TraceIn:
		return fmt.Sprintf("trace of rank %d", a.Rank)
	case ReplicasAgree:
		return fmt.Sprintf("agree %d", a.Step)
	case MemberFinished:
		return fmt.Sprintf("finished %s %d steps", a.Worker, a.Steps)
	case RingEnded:
		s := fmt.Sprintf("ring %d ended failed=%v committed %d survivors %d rollback=%v credits %v", a.Ring, a.Failed, a.Committed, a.Survivors, a.Rollback, a.Credits)
		if a.Straggler != "" {
			s += " straggler " + a.Straggler
		}
		return s
	case Rewind:
		return fmt.Sprintf("rewind %d", a.Step)
	case WaitForJoins:
		return fmt.Sprintf("wait for joins %d of %d", a.Have, a.Min)
	case Resuming:
		return fmt.Sprintf("resuming with %d", a.Have)
	case Checkpoint:
		return fmt.Sprintf("checkpoint %d final=%v", a.Step, a.Final)
	case Evaluate:
		return fmt.Sprintf("evaluate epoch %d step %d", a.Epoch, a.Step)
	case Finish:
		if a.Err != nil {
			return fmt.Sprintf("finish %v at %d: %v", a.Outcome, a.Step, a.Err)
		}
		return fmt.Sprintf("finish %v at %d", a.Outcome, a.Step)
	}
	return fmt.Sprintf("%T%+v", a, a)
}

// script drives a machine through scripted events, checking the actions of
// each against a golden list.
type script struct {
	t   *testing.T
	m   *Machine
	now time.Duration
	// keys of the members by id (the newest join).
	keys map[string]uint64
	next uint64
}

// scriptConfig is a job of three workers, 100 steps, global batch 96.
func scriptConfig() Config {
	return Config{World: 3, MinWorkers: 1, MaxWorkers: 3, GlobalBatch: 96, Unit: 1, RingFailures: 3, MaxSteps: 100,
		JoinTimeout: 30 * time.Second, RingEndTimeout: 15 * time.Second, TimeoutGrace: 500 * time.Millisecond, CompleteGrace: 6 * time.Second}
}

func newScript(t *testing.T, cfg Config, want ...string) *script {
	t.Helper()
	s := &script{t: t, m: New(cfg), keys: map[string]uint64{}}
	s.check("start", s.m.Start(0), want)
	return s
}

func (s *script) check(what string, got []Action, want []string) {
	s.t.Helper()
	var lines []string
	for _, a := range got {
		lines = append(lines, show(a))
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		s.t.Fatalf("%s at %v:\ngot\n  %s\nwant\n  %s", what, s.now, strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
}

// after advances the clock by d.
func (s *script) after(d time.Duration) *script { s.now += d; return s }

// do hands e to the machine and checks its actions.
func (s *script) do(e Event, want ...string) {
	s.t.Helper()
	s.check(fmt.Sprintf("%T%+v", e, e), s.m.Handle(s.now, e), want)
}

// join makes a worker of id join.
func (s *script) join(id string, want ...string) {
	s.t.Helper()
	s.next++
	s.keys[id] = s.next
	s.do(Joined{Member{Key: s.next, ID: id, Addr: id + ":1"}}, want...)
}

func (s *script) lost(id, cause string, want ...string) {
	s.t.Helper()
	s.do(Lost{s.keys[id], errors.New(cause)}, want...)
}

// ring3 is a script whose ring 1 of a, b and c has trained to step 10,
// rank 0 (a) having reported it.
func ring3(t *testing.T, cfg Config) *script {
	t.Helper()
	s := newScript(t, cfg, "store ring 1 from step 0", "timer join 30s")
	s.join("a")
	s.join("b")
	s.join("c", "stop join", "start ring 1 at 0: a(fetch) b(fetch) c(fetch)")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 9, Steps: 10}}, "steps 0-9 rank 0")
	return s
}

func failed(id string, rank int, applied uint64, err string) Reported {
	return Reported{Report{Worker: id, Ring: 1, Rank: rank, Status: ReportFailed, Applied: applied, Error: err}}
}

func paused(id string, ring uint32, rank int, applied uint64) Reported {
	return Reported{Report{Worker: id, Ring: ring, Rank: rank, Status: ReportPaused, Applied: applied}}
}

// finishRing reports the job's last steps and final state in ring, whose
// members are ids by rank, starting at step from.
func (s *script) finishRing(ring uint32, from uint64, ids []string, want ...string) {
	s.t.Helper()
	var got []Action
	got = append(got, s.m.Handle(s.now, Uploaded{Ring: ring, Step: 100, Epoch: 1, Checkpoint: true, Final: true})...)
	for rank, id := range ids {
		got = append(got, s.m.Handle(s.now, Reported{Report{Worker: id, Ring: ring, Rank: rank, Step: 99, Steps: int(100 - from), Finished: true}})...)
	}
	s.check("the last step", got, want)
}
