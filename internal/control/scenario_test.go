package control

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Each test here replays, as scripted events, a fault scenario that a
// multi-process or in-process test of the coordinator (cmd/coordinator,
// internal/coordinator) shows with real workers, and checks the machine's
// actions against a golden list.

// TestScenarioKilledWorker (TestKilledWorkerJobCompletes,
// TestInProcessWorkerLossRecovers): a member's process dies mid-step; the
// ring is aborted, the survivors form ring 2 from the step they hold, the
// first step after the failure counts as recovered, and the job completes.
func TestScenarioKilledWorker(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.after(time.Second).lost("b", "its Join stream ended",
		"drop lost b (rank 1): its Join stream ended",
		"change lost b ring 1 step 10: its Join stream ended",
		"ring 1 failed (b, reported false, waiting for \"\"): lost b: its Join stream ended",
		"timer ring-end 15s",
		"abort ring 1 [a c]: lost worker b (rank 1, b:1): its Join stream ended")
	s.do(failed("c", 2, 10, "aborted"), "member failed c waiting for \"\"")
	s.do(failed("a", 0, 10, "aborted"),
		"member failed a waiting for \"\"",
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a c")
	s.after(2*time.Second).do(Reported{Report{Worker: "a", Ring: 2, Rank: 0, Step: 10, Steps: 1}}, "steps 10-10 rank 0 recovered after 2s")
	s.finishRing(2, 11, []string{"a", "c"},
		"checkpoint 100 final=true",
		"steps 11-99 rank 0",
		"finished a 90 steps",
		"steps 11-99 rank 1",
		"finished c 90 steps",
		"finish completed at 100")
}

// TestScenarioStragglerFrozen (once also a process test,
// TestStragglerIsNamed): c is frozen (SIGSTOP). d, waiting for it, passes
// its all-reduce deadline first; a and b break in turn. The abort waits
// one grace for the root cause, the frozen member that never reports is
// lost when the ring's end times out, and c, the member the first starved
// was waiting for, is named the straggler.
func TestScenarioStragglerFrozen(t *testing.T) {
	cfg := scriptConfig()
	cfg.World, cfg.MaxWorkers = 4, 4
	s := newScript(t, cfg, "store ring 1 from step 0", "timer join 30s")
	for _, id := range []string{"a", "b", "c"} {
		s.join(id)
	}
	s.join("d", "stop join", "start ring 1 at 0: a(fetch) b(fetch) c(fetch) d(fetch)")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 6, Steps: 7}}, "steps 0-6 rank 0")
	s.after(3*time.Second).do(Reported{Report{Worker: "d", Ring: 1, Rank: 3, Status: ReportFailed, Applied: 7, TimedOut: true,
		Waiting: 3 * time.Second, WaitedFor: 2, Frames: 1, Error: "receive from rank 2: deadline exceeded"}},
		"member failed d waiting for \"c\"",
		"ring 1 failed (d, reported true, waiting for \"c\"): receive from rank 2: deadline exceeded",
		"change ring-failed d ring 1 step 7: receive from rank 2: deadline exceeded",
		"timer ring-end 15s",
		"timer abort 500ms")
	s.after(2*time.Millisecond).do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Status: ReportFailed, Applied: 7, Secondary: true,
		Waiting: 3 * time.Second, WaitedFor: 3, Frames: 2, Error: "receive from rank 3: stream broken"}},
		"member failed a waiting for \"d\"")
	s.after(500*time.Millisecond).do(Fired{AbortTimer}, "abort ring 1 [a b c d]: d: receive from rank 2: deadline exceeded")
	s.after(time.Millisecond).do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Status: ReportFailed, Applied: 7,
		Waiting: 3 * time.Second, WaitedFor: 0, Frames: 3, Error: "aborted"}},
		"member failed b waiting for \"a\"")
	s.after(15*time.Second).do(Fired{RingEndTimer},
		"drop silent c (rank 2): did not report within 15s after its ring ended",
		"change lost c ring 1 step 7: did not report within 15s after its ring ended",
		"change straggler c ring 1 step 7: d (rank 3, d:1) had waited 3s for c (rank 2, c:1) after receiving 1 frames of the collective when the ring failed on an all-reduce deadline",
		"ring 1 ended failed=true committed 7 survivors 3 rollback=false credits [{a 7} {b 7} {c 7} {d 7}] straggler c",
		"rewind 7",
		"start ring 2 at 7: a b d")
}

// TestScenarioLostMemberThatReports (TestLostMemberThatReportsIsNotASurvivor):
// a member declared lost whose failure report still arrives, before or
// after, counts once, as gone: the ring waits for the others, and the next
// ring is formed without it.
func TestScenarioLostMemberThatReports(t *testing.T) {
	for _, order := range []string{"lost-then-report", "report-then-lost"} {
		t.Run(order, func(t *testing.T) {
			s := ring3(t, scriptConfig())
			lost := []string{
				"drop lost b (rank 1): gossip: the node failed",
				"change lost b ring 1 step 10: gossip: the node failed",
			}
			if order == "lost-then-report" {
				s.lost("b", "gossip: the node failed", append(lost,
					"ring 1 failed (b, reported false, waiting for \"\"): lost b: gossip: the node failed",
					"timer ring-end 15s",
					"abort ring 1 [a c]: lost worker b (rank 1, b:1): gossip: the node failed")...)
				s.do(failed("b", 1, 10, "broken"), "ignored b ring 1 lost true")
			} else {
				s.do(failed("b", 1, 10, "broken"),
					"member failed b waiting for \"\"",
					"ring 1 failed (b, reported true, waiting for \"\"): broken",
					"change ring-failed b ring 1 step 10: broken",
					"timer ring-end 15s",
					"abort ring 1 [a b c]: broken")
				s.lost("b", "gossip: the node failed", lost...)
			}
			s.do(failed("a", 0, 10, "broken"), "member failed a waiting for \"\"")
			s.do(failed("c", 2, 10, "broken"),
				"member failed c waiting for \"\"",
				"stop ring-end",
				"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
				"rewind 10",
				"start ring 2 at 10: a c")
		})
	}
}

// TestScenarioJoinAtStepBoundary (TestWorkerJoinsMidRun): a fourth worker
// joins a running ring with room for it: the ring pauses at a step
// boundary, and ring 2 takes it in, fetching the state a member uploads.
func TestScenarioJoinAtStepBoundary(t *testing.T) {
	cfg := scriptConfig()
	cfg.MaxWorkers = 4
	s := ring3(t, cfg)
	s.join("d", "pause ring 1 [a b c]: worker d joined")
	s.do(paused("b", 1, 1, 12), "timer ring-end 15s")
	s.do(paused("a", 1, 0, 12))
	s.do(paused("c", 1, 2, 12),
		"stop ring-end",
		"ring 1 ended failed=false committed 12 survivors 3 rollback=false credits [{a 12} {b 12} {c 12}]",
		"rewind 12",
		"change joined d ring 2 step 12",
		"start ring 2 at 12: a(upload) b c d(fetch)")
	// A join to a full ring waits.
	s.join("e")
}

// TestScenarioLeaveWithoutRollback (TestSIGTERMLeavesWithoutRollback): a
// drained worker pauses the ring to leave: it is released, and the others
// go on from the same step, nothing undone.
func TestScenarioLeaveWithoutRollback(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Status: ReportPaused, Applied: 10, Leaving: true}}, "timer ring-end 15s")
	s.do(paused("a", 1, 0, 10))
	s.do(paused("b", 1, 1, 10),
		"stop ring-end",
		"release c",
		"change left c ring 1 step 10",
		"ring 1 ended failed=false committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a b")
	// Its stream ending afterwards changes nothing.
	s.lost("c", "its Join stream ended")
}

// TestScenarioRollback: a member that applied one step more than another
// when the ring failed rolls it back; the reported step is undone.
func TestScenarioRollback(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 10, Steps: 1}}, "steps 10-10 rank 0")
	s.do(failed("b", 1, 10, "connection reset"),
		"member failed b waiting for \"\"",
		"ring 1 failed (b, reported true, waiting for \"\"): connection reset",
		"change ring-failed b ring 1 step 10: connection reset",
		"timer ring-end 15s",
		"abort ring 1 [a b c]: connection reset")
	s.do(failed("a", 0, 11, "aborted"), "member failed a waiting for \"\"")
	s.do(failed("c", 2, 10, "aborted"),
		"member failed c waiting for \"\"",
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 3 rollback=true credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a(rollback) b c")
	if s.m.Reported() != 10 {
		t.Fatalf("%d steps reported after the rollback, want 10", s.m.Reported())
	}
}

// TestScenarioResume (TestCoordinatorRestartResumes,
// TestResumeAfterAnEpochReportsTheWholeJob): a coordinator restarted on a
// checkpoint of step 40 waits for every worker; when one does not come
// back it goes on with those that did, from the stored checkpoint.
func TestScenarioResume(t *testing.T) {
	cfg := scriptConfig()
	cfg.StartStep, cfg.MinWorkers = 40, 2
	s := newScript(t, cfg, "store ring 1 from step 40", "timer join 30s")
	s.join("a")
	s.join("b")
	s.after(30*time.Second).do(Fired{JoinTimer}, "resuming with 2", "start ring 1 at 40: a(fetch) b(fetch)")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 40, Steps: 1}}, "steps 40-40 rank 0")
}

// TestScenarioNonFiniteStop (TestNonFiniteStepWaitsForEveryMember,
// TestNonFiniteGradientPolicy): under the stop policy the first member to
// report a non-finite step does not abort the others; the job fails once
// every member has reported, naming exactly those whose batches were at
// fault.
func TestScenarioNonFiniteStop(t *testing.T) {
	s := ring3(t, scriptConfig())
	fatal := func(id string, rank int, here bool) Reported {
		return Reported{Report{Worker: id, Ring: 1, Rank: rank, Status: ReportFailed, Applied: 10, Step: 10, Fatal: true, NonfiniteHere: here, Error: "non-finite gradient"}}
	}
	s.do(fatal("c", 2, true),
		"member failed c waiting for \"\"",
		"ring 1 failed (c, reported true, waiting for \"\"): non-finite gradient",
		"change ring-failed c ring 1 step 10: non-finite gradient",
		"timer ring-end 15s")
	s.do(fatal("b", 1, false), "member failed b waiting for \"\"")
	s.do(fatal("a", 0, true),
		"member failed a waiting for \"\"",
		"stop ring-end",
		"finish failed at 0: the gradient of step 10 was not finite (NaN or ±Inf) on a, c; each worker's log names the sample ids of its batch "+
			"(in deterministic mode a gradient beyond the fixed-point range counts as not finite) "+
			"(a diverging learning rate or corrupt data are the usual causes; -nonfinite skip skips such steps instead)")
}

// TestScenarioRingFailureBudget (TestRingFailureBudget; once also a
// process test, TestCutLinkFailsNamingThePeer): every ring fails before its
// first step (a member's address is unreachable); after RingFailures of
// them the job gives up, listing each ring's cause.
func TestScenarioRingFailureBudget(t *testing.T) {
	cfg := scriptConfig()
	cfg.World = 2
	s := newScript(t, cfg, "store ring 1 from step 0", "timer join 30s")
	s.join("a")
	s.join("b", "stop join", "start ring 1 at 0: a(fetch) b(fetch)")
	for ring := uint32(1); ring <= 3; ring++ {
		r := Reported{Report{Worker: "a", Ring: ring, Rank: 0, Status: ReportFailed, Error: "dial 127.0.0.1:1: connection refused"}}
		n := strings.NewReplacer("N", string(rune('0'+ring)), "M", string(rune('1'+ring)))
		s.do(r, n.Replace("member failed a waiting for \"\""),
			n.Replace("ring N failed (a, reported true, waiting for \"\"): dial 127.0.0.1:1: connection refused"),
			n.Replace("change ring-failed a ring N step 0: dial 127.0.0.1:1: connection refused"),
			"timer ring-end 15s",
			n.Replace("abort ring N [a b]: dial 127.0.0.1:1: connection refused"))
		end := []string{"member failed b waiting for \"\"", "stop ring-end",
			n.Replace("ring N ended failed=true committed 0 survivors 2 rollback=false credits []")}
		if ring < 3 {
			// Zero steps applied says nothing (a fetch cut short says
			// zero too): both fetch ring M's state, which the
			// coordinator stores.
			end = append(end, "rewind 0", n.Replace("store ring M from step 0"), n.Replace("start ring M at 0: a(fetch) b(fetch)"))
		} else {
			end = append(end, "finish failed at 0: 3 rings in a row failed before completing a step:\n"+
				"  ring 1: a: dial 127.0.0.1:1: connection refused\n"+
				"  ring 2: a: dial 127.0.0.1:1: connection refused\n"+
				"  ring 3: a: dial 127.0.0.1:1: connection refused")
		}
		s.do(Reported{Report{Worker: "b", Ring: ring, Rank: 1, Status: ReportFailed, Error: "aborted"}}, end...)
	}
}

// TestScenarioTooFewWorkers (TestTooFewWorkersFailsNamingTheLost,
// TestJoinTimeoutNamesMissingWorkers): a job that needs three workers
// loses one: it waits for a replacement, then fails naming who joined and
// who was lost.
func TestScenarioTooFewWorkers(t *testing.T) {
	cfg := scriptConfig()
	cfg.MinWorkers = 3
	s := ring3(t, cfg)
	s.lost("b", "its Join stream ended",
		"drop lost b (rank 1): its Join stream ended",
		"change lost b ring 1 step 10: its Join stream ended",
		"ring 1 failed (b, reported false, waiting for \"\"): lost b: its Join stream ended",
		"timer ring-end 15s",
		"abort ring 1 [a c]: lost worker b (rank 1, b:1): its Join stream ended")
	s.do(failed("a", 0, 10, "aborted"), "member failed a waiting for \"\"")
	s.do(failed("c", 2, 10, "aborted"),
		"member failed c waiting for \"\"",
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"wait for joins 2 of 3",
		"timer join 30s")
	s.after(30*time.Second).do(Fired{JoinTimer},
		"finish failed at 10: waited 30s for 3 workers, 2 joined (a, c); missing 1; lost: b at step 10 (its Join stream ended)")
	// Before any ring, the first ring waits for every worker asked for.
	s = newScript(t, scriptConfig(), "store ring 1 from step 0", "timer join 30s")
	s.join("a")
	s.after(30*time.Second).do(Fired{JoinTimer}, "finish failed at 0: waited 30s for 3 workers, 1 joined (a); missing 2")
}

// TestScenarioShutdown (TestCoordinatorMetricsAndShutdown): a shutdown
// pauses the ring with a checkpoint and ends the job there, the workers
// left waiting for the next coordinator; without a ring it stops at once.
func TestScenarioShutdown(t *testing.T) {
	cfg := scriptConfig()
	cfg.Checkpointing = true
	s := ring3(t, cfg)
	s.do(Shutdown{}, "timer ring-end 15s", "pause ring 1 [a b c] with a checkpoint: shutting down")
	s.do(Uploaded{Ring: 1, Step: 12, Epoch: 0, Checkpoint: true}, "checkpoint 12 final=false")
	s.do(paused("a", 1, 0, 12))
	s.do(paused("b", 1, 1, 12))
	s.do(paused("c", 1, 2, 12),
		"stop ring-end",
		"ring 1 ended failed=false committed 12 survivors 3 rollback=false credits [{a 12} {b 12} {c 12}]",
		"finish shut down at 12")
	s = newScript(t, cfg, "store ring 1 from step 0", "timer join 30s")
	s.do(Shutdown{}, "stop join", "finish shut down at 0")
}

// TestScenarioCompletion (TestLocalProcessesTrain, TestRestartAfterCompletion):
// the job completes once the final state is in and every member is done,
// evaluations and timelines included; a member lost after the final state
// came in does not fail it. A coordinator restarted on the last step's
// checkpoint releases the workers that come back, then completes.
func TestScenarioCompletion(t *testing.T) {
	cfg := scriptConfig()
	cfg.Trace = true
	s := ring3(t, cfg)
	s.do(Uploaded{Ring: 1, Step: 50, Epoch: 0, Checkpoint: true, EpochEnd: true}, "checkpoint 50 final=false", "evaluate epoch 0 step 50")
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.lost("c", "its Join stream ended", "late loss c: its Join stream ended")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 99, Steps: 90, Finished: true}}, "steps 10-99 rank 0", "finished a 100 steps")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 1", "finished b 100 steps")
	s.do(Traced{1, 0}, "trace of rank 0")
	s.do(Traced{1, 1}, "trace of rank 1")
	s.do(Traced{1, 1})
	s.do(Traced{1, 2}, "trace of rank 2")
	s.do(Evaluated{}, "finish completed at 100")

	cfg.StartStep = 100
	s = newScript(t, cfg, "timer grace 6s")
	s.join("a", "release a")
	s.after(6*time.Second).do(Fired{GraceTimer}, "finish completed at 100")
}

// TestScenarioPartition (TestPartitionedLinkRecovers): the first failure
// is a consequence (a member's neighbour broke its stream); the root
// cause, a member starved past its deadline, arrives after and replaces it
// in the record; a member lost later is the root cause in turn.
func TestScenarioPartition(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Status: ReportFailed, Applied: 10, Secondary: true, Error: "rank 1 broke its stream"}},
		"member failed c waiting for \"\"",
		"ring 1 failed (c, reported true, waiting for \"\"): rank 1 broke its stream",
		"change ring-failed c ring 1 step 10: rank 1 broke its stream",
		"timer ring-end 15s",
		"timer abort 500ms")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Status: ReportFailed, Applied: 10, Secondary: true, Error: "rank 0 broke its stream"}},
		"member failed b waiting for \"\"")
	s.lost("a", "gossip: the node failed",
		"drop lost a (rank 0): gossip: the node failed",
		"change lost a ring 1 step 10: gossip: the node failed",
		"amend ring-failed a ring 1 step 10: lost: gossip: the node failed",
		"stop ring-end",
		"stop abort",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: b c")

	s = ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Status: ReportFailed, Applied: 10, Secondary: true, Error: "rank 1 broke its stream"}},
		"member failed c waiting for \"\"",
		"ring 1 failed (c, reported true, waiting for \"\"): rank 1 broke its stream",
		"change ring-failed c ring 1 step 10: rank 1 broke its stream",
		"timer ring-end 15s",
		"timer abort 500ms")
	// A root cause that did not time out needs no more waiting.
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Status: ReportFailed, Applied: 10, Error: "send to rank 2: connection refused"}},
		"member failed b waiting for \"\"",
		"amend ring-failed b ring 1 step 10: send to rank 2: connection refused",
		"stop abort",
		"abort ring 1 [a b c]: send to rank 2: connection refused")
}

// TestScenarioDivergedReplicas (TestDivergedReplicasNameWorkersAndStep):
// weight hashes that disagree fail the job naming both workers and the
// step; a second hash from one rank for one step is refused.
func TestScenarioDivergedReplicas(t *testing.T) {
	hash := func(id string, rank int, step, h uint64) Reported {
		return Reported{Report{Worker: id, Ring: 1, Rank: rank, Step: step, Steps: 1, HasHash: true, Hash: h}}
	}
	s := ring3(t, scriptConfig())
	s.do(hash("a", 0, 10, 0xabc), "steps 10-10 rank 0")
	s.do(hash("b", 1, 10, 0xabc), "steps 10-10 rank 1")
	s.do(hash("c", 2, 10, 0xabc), "steps 10-10 rank 2", "agree 10")
	s.do(hash("a", 0, 11, 0xabc), "steps 11-11 rank 0")
	s.do(hash("c", 2, 11, 0xabc), "steps 11-11 rank 2")
	s.do(hash("b", 1, 11, 0xdef), "steps 11-11 rank 1",
		"finish failed at 0: replicas diverged after step 11: worker a (rank 0, a:1) has weights hash 0000000000000abc, worker b (rank 1, b:1) has 0000000000000def")
	s = ring3(t, scriptConfig())
	s.do(hash("b", 1, 10, 0xabc), "steps 10-10 rank 1")
	s.do(hash("b", 1, 10, 0xabc), "steps 10-10 rank 1", "finish failed at 0: worker b (rank 1, b:1) reported the hash of step 10 twice")
}

// TestScenarioEveryMemberLost: when every member of a ring is lost the job
// starts over from the newest state the coordinator holds, with the
// workers that join.
func TestScenarioEveryMemberLost(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Uploaded{Ring: 1, Step: 8, Checkpoint: true}, "checkpoint 8 final=false")
	s.lost("a", "gone",
		"drop lost a (rank 0): gone",
		"change lost a ring 1 step 10: gone",
		"ring 1 failed (a, reported false, waiting for \"\"): lost a: gone",
		"timer ring-end 15s",
		"abort ring 1 [b c]: lost worker a (rank 0, a:1): gone")
	s.lost("b", "gone", "drop lost b (rank 1): gone", "change lost b ring 1 step 10: gone")
	s.lost("c", "gone", "drop lost c (rank 2): gone", "change lost c ring 1 step 10: gone",
		"stop ring-end",
		"store ring 2 from step 8",
		"ring 1 ended failed=true committed 8 survivors 0 rollback=true credits [{a 8} {b 8} {c 8}]",
		"rewind 8",
		"wait for joins 0 of 1",
		"timer join 30s")
	s.join("d", "stop join", "start ring 2 at 8: d(fetch)")
}

// TestScenarioRejectedReport (TestBatchedStepReport,
// TestForgedReportCannotEvictAWorker): a report that reaches back before
// its ring's start, names another rank, or from rank 0 repeats or skips a
// step, is rejected and its sender is lost; a report of another ring is
// ignored.
func TestScenarioRejectedReport(t *testing.T) {
	for _, first := range []uint64{9, 11} {
		s := ring3(t, scriptConfig())
		s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: first, Steps: 1}},
			fmt.Sprintf("rejected a: step: %d (from %d), the next step is 10", first, first),
			fmt.Sprintf("drop lost a (rank 0): sent an invalid report: step: %d (from %d), the next step is 10", first, first),
			fmt.Sprintf("change lost a ring 1 step 10: sent an invalid report: step: %d (from %d), the next step is 10", first, first),
			fmt.Sprintf("ring 1 failed (a, reported false, waiting for \"\"): lost a: sent an invalid report: step: %d (from %d), the next step is 10", first, first),
			"timer ring-end 15s",
			fmt.Sprintf("abort ring 1 [b c]: lost worker a (rank 0, a:1): sent an invalid report: step: %d (from %d), the next step is 10", first, first))
	}
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "a", Ring: 7, Rank: 0, Step: 10, Steps: 1}}, "ignored a ring 7 lost false")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 2, Step: 10, Steps: 1}},
		`rejected b: rank 2 of ring 1 is not "b"`,
		`drop lost b (rank 1): sent an invalid report: rank 2 of ring 1 is not "b"`,
		`change lost b ring 1 step 10: sent an invalid report: rank 2 of ring 1 is not "b"`,
		`ring 1 failed (b, reported false, waiting for ""): lost b: sent an invalid report: rank 2 of ring 1 is not "b"`,
		"timer ring-end 15s",
		`abort ring 1 [a c]: lost worker b (rank 1, b:1): sent an invalid report: rank 2 of ring 1 is not "b"`)
	s.do(failed("a", 0, 10, "aborted"), `member failed a waiting for ""`)
	s.do(failed("c", 2, 10, "aborted"), `member failed c waiting for ""`, "stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a c")
	s.do(Reported{Report{Worker: "c", Ring: 2, Rank: 1, Step: 10, Steps: 3}},
		"rejected c: step: 10 (from 8), ring 2 started at 10",
		"drop lost c (rank 1): sent an invalid report: step: 10 (from 8), ring 2 started at 10",
		"change lost c ring 2 step 10: sent an invalid report: step: 10 (from 8), ring 2 started at 10",
		"ring 2 failed (c, reported false, waiting for \"\"): lost c: sent an invalid report: step: 10 (from 8), ring 2 started at 10",
		"timer ring-end 15s",
		"abort ring 2 [a]: lost worker c (rank 1, c:1): sent an invalid report: step: 10 (from 8), ring 2 started at 10")
}

// TestScenarioLocalWorkerExits (TestMissingLocalWorkersAreNamed): a local
// worker that exits before the first ring fails the job at once.
func TestScenarioLocalWorkerExits(t *testing.T) {
	s := newScript(t, scriptConfig(), "store ring 1 from step 0", "timer join 30s")
	s.join("a")
	s.do(ExitedUnjoined{errors.New("local worker b exited")}, "stop join", "finish failed at 0: local worker b exited")
	if got := s.m.Handle(s.now, Joined{Member{Key: 9, ID: "c"}}); got != nil {
		t.Fatalf("actions after the job's end: %v", got)
	}
}

// TestScenarioFrozenThenPaused: a worker joins while a ring's member is
// frozen; the pause waits for it with no deadline of its own (a pause
// waits for a step to end) until gossip declares it failed.
func TestScenarioFrozenThenPaused(t *testing.T) {
	cfg := scriptConfig()
	cfg.MaxWorkers = 4
	s := ring3(t, cfg)
	s.join("d", "pause ring 1 [a b c]: worker d joined")
	s.do(paused("a", 1, 0, 12), "timer ring-end 15s")
	s.do(paused("b", 1, 1, 12))
	s.after(15*time.Second).do(Fired{RingEndTimer},
		"drop silent c (rank 2): did not report within 15s after its ring ended",
		"change lost c ring 1 step 10: did not report within 15s after its ring ended",
		"ring 1 ended failed=false committed 12 survivors 2 rollback=false credits [{a 12} {b 12} {c 12}]",
		"rewind 12",
		"change joined d ring 2 step 12",
		"start ring 2 at 12: a(upload) b d(fetch)")
}

// TestScenarioHolderLostWhileWaiting: the only member that held the step
// to resume from is lost while the job waits for workers; the next ring
// starts from the newest checkpoint instead (it used to fail the job: no
// member held the state).
func TestScenarioHolderLostWhileWaiting(t *testing.T) {
	cfg := scriptConfig()
	cfg.MinWorkers = 2
	s := ring3(t, cfg)
	s.do(Uploaded{Ring: 1, Step: 8, Checkpoint: true}, "checkpoint 8 final=false")
	s.lost("b", "gone",
		"drop lost b (rank 1): gone",
		"change lost b ring 1 step 10: gone",
		"ring 1 failed (b, reported false, waiting for \"\"): lost b: gone",
		"timer ring-end 15s",
		"abort ring 1 [a c]: lost worker b (rank 1, b:1): gone")
	s.lost("c", "gone", "drop lost c (rank 2): gone", "change lost c ring 1 step 10: gone")
	s.do(failed("a", 0, 10, "aborted"), `member failed a waiting for ""`,
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 1 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"wait for joins 1 of 2",
		"timer join 30s")
	s.lost("a", "gone", "drop waiting a (rank -1): gone")
	s.join("d")
	s.join("e", "rewind 8", "store ring 2 from step 8", "stop join", "start ring 2 at 8: d(fetch) e(fetch)")
	if s.m.Reported() != 8 || s.m.Committed() != 8 {
		t.Fatalf("reported %d, committed %d; want 8 and 8", s.m.Reported(), s.m.Committed())
	}
}

// TestScenarioNonFiniteSkip (TestNonFiniteGradientPolicy, skip): under the
// skip policy a non-finite gradient is a step every replica skipped,
// reported like any other; the ring goes on.
func TestScenarioNonFiniteSkip(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Step: 10, Steps: 1, NonfiniteHere: true}}, "steps 10-10 rank 2")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 10, Steps: 1}}, "steps 10-10 rank 0")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 11, Steps: 1}}, "steps 11-11 rank 0")
}

// TestScenarioFinishedInAFailedRing: members that reported the job's last
// step in a ring that then failed (rank 0 lost before its final upload)
// are not done in the ring that redoes that step: the job completes once
// the new ring's members finish, not before, and not never. The steps of
// c and d, counted when they reported the last step, are not counted
// again when the ring ends.
func TestScenarioFinishedInAFailedRing(t *testing.T) {
	cfg := scriptConfig()
	cfg.World, cfg.MaxWorkers = 4, 4
	s := newScript(t, cfg, "store ring 1 from step 0", "timer join 30s")
	for _, id := range []string{"a", "b", "c"} {
		s.join(id)
	}
	s.join("d", "stop join", "start ring 1 at 0: a(fetch) b(fetch) c(fetch) d(fetch)")
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Step: 99, Steps: 100, Finished: true}}, "steps 0-99 rank 2", "finished c 100 steps")
	s.do(Reported{Report{Worker: "d", Ring: 1, Rank: 3, Step: 99, Steps: 100, Finished: true}}, "steps 0-99 rank 3", "finished d 100 steps")
	s.lost("a", "gone",
		"drop lost a (rank 0): gone",
		"change lost a ring 1 step 0: gone",
		"ring 1 failed (a, reported false, waiting for \"\"): lost a: gone",
		"timer ring-end 15s",
		"abort ring 1 [b c d]: lost worker a (rank 0, a:1): gone")
	s.do(failed("b", 1, 100, "aborted"), "member failed b waiting for \"\"")
	s.after(15*time.Second).do(Fired{RingEndTimer},
		"drop silent c (rank 2): did not report within 15s after its ring ended",
		"change lost c ring 1 step 0: did not report within 15s after its ring ended",
		"drop silent d (rank 3): did not report within 15s after its ring ended",
		"change lost d ring 1 step 0: did not report within 15s after its ring ended",
		"ring 1 ended failed=true committed 99 survivors 1 rollback=false credits [{a 99} {b 99}]",
		"rewind 99",
		"start ring 2 at 99: b(rollback)")
	s.do(Uploaded{Ring: 2, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.do(Reported{Report{Worker: "b", Ring: 2, Rank: 0, Step: 99, Steps: 1, Finished: true}},
		"steps 99-99 rank 0 recovered after 15s", "finished b 1 steps", "finish completed at 100")
}

// TestScenarioTraceOfALateLoss: a traced job whose member is lost after
// the final state came in, before it uploaded its timeline, completes
// without that timeline: nothing more can come from it.
func TestScenarioTraceOfALateLoss(t *testing.T) {
	cfg := scriptConfig()
	cfg.Trace = true
	s := ring3(t, cfg)
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.do(Traced{1, 0}, "trace of rank 0")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 99, Steps: 90, Finished: true}}, "steps 10-99 rank 0", "finished a 100 steps")
	s.do(Traced{1, 1}, "trace of rank 1")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 1", "finished b 100 steps")
	s.lost("c", "its Join stream ended", "late loss c: its Join stream ended", "finish completed at 100")
}

// TestScenarioJoinerAbortedWhileFetching: a worker that joined is aborted
// while it fetches its new ring's start state (another member was lost);
// its failure report says it applied no step. It holds nothing of the
// ring and fetches again; the others' steps stand: the job does not roll
// back to step 0.
func TestScenarioJoinerAbortedWhileFetching(t *testing.T) {
	cfg := scriptConfig()
	cfg.MaxWorkers = 4
	s := ring3(t, cfg)
	s.join("d", "pause ring 1 [a b c]: worker d joined")
	s.do(paused("a", 1, 0, 12), "timer ring-end 15s")
	s.do(paused("b", 1, 1, 12))
	s.do(paused("c", 1, 2, 12),
		"stop ring-end",
		"ring 1 ended failed=false committed 12 survivors 3 rollback=false credits [{a 12} {b 12} {c 12}]",
		"rewind 12",
		"change joined d ring 2 step 12",
		"start ring 2 at 12: a(upload) b c d(fetch)")
	s.lost("b", "gone",
		"drop lost b (rank 1): gone",
		"change lost b ring 2 step 10: gone",
		"ring 2 failed (b, reported false, waiting for \"\"): lost b: gone",
		"timer ring-end 15s",
		"abort ring 2 [a c d]: lost worker b (rank 1, b:1): gone")
	fail := func(id string, rank int, applied uint64) Reported {
		return Reported{Report{Worker: id, Ring: 2, Rank: rank, Status: ReportFailed, Applied: applied, Error: "aborted"}}
	}
	s.do(fail("d", 3, 0), "member failed d waiting for \"\"")
	s.do(fail("a", 0, 12), "member failed a waiting for \"\"")
	s.do(fail("c", 2, 12), "member failed c waiting for \"\"",
		"stop ring-end",
		"ring 2 ended failed=true committed 12 survivors 3 rollback=false credits []",
		"rewind 12",
		"start ring 3 at 12: a(upload) c d(fetch)")

	// When no member holds a step of the ring, the next starts where it
	// did, from the coordinator's state.
	s = newScript(t, scriptConfig(), "store ring 1 from step 0", "timer join 30s")
	s.join("a")
	s.join("b")
	s.join("c", "stop join", "start ring 1 at 0: a(fetch) b(fetch) c(fetch)")
	for rank, id := range []string{"a", "b", "c"} {
		want := []string{"member failed " + id + " waiting for \"\""}
		switch id {
		case "a":
			want = append(want, "ring 1 failed (a, reported true, waiting for \"\"): aborted", "change ring-failed a ring 1 step 0: aborted",
				"timer ring-end 15s", "abort ring 1 [a b c]: aborted")
		case "c":
			want = append(want, "stop ring-end", "ring 1 ended failed=true committed 0 survivors 3 rollback=false credits []",
				"rewind 0", "store ring 2 from step 0", "start ring 2 at 0: a(fetch) b(fetch) c(fetch)")
		}
		s.do(Reported{Report{Worker: id, Ring: 1, Rank: rank, Status: ReportFailed, Error: "aborted"}}, want...)
	}
	s.do(Reported{Report{Worker: "a", Ring: 2, Rank: 0, Status: ReportFailed, Error: "aborted"}},
		"member failed a waiting for \"\"",
		"ring 2 failed (a, reported true, waiting for \"\"): aborted",
		"change ring-failed a ring 2 step 0: aborted",
		"timer ring-end 15s",
		"abort ring 2 [a b c]: aborted")
}

// TestScenarioSurvivorWhoseStreamEnded: a member reports how its ring
// failed, then its stream ends (the process exits); its Lost event comes
// after the others' reports. The next ring leaves it out, as it does a
// waiting worker whose stream ended, rather than fail at once for it.
func TestScenarioSurvivorWhoseStreamEnded(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(failed("b", 1, 10, "connection reset"),
		"member failed b waiting for \"\"",
		"ring 1 failed (b, reported true, waiting for \"\"): connection reset",
		"change ring-failed b ring 1 step 10: connection reset",
		"timer ring-end 15s",
		"abort ring 1 [a b c]: connection reset")
	s.do(StreamEnded{s.keys["b"]})
	s.do(failed("a", 0, 10, "aborted"), "member failed a waiting for \"\"")
	s.do(failed("c", 2, 10, "aborted"), "member failed c waiting for \"\"",
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a c")
	s.lost("b", "its Join stream ended", "drop waiting b (rank -1): its Join stream ended")
}

// TestScenarioTimelineOfAnEarlierRing: a member of a ring that then failed
// uploads its timeline late, as the next, smaller ring trains. It is not
// the new ring's (it used to fail the job: "rank 2 uploaded a trace twice
// or out of range"); the job completes with the new ring's timelines.
func TestScenarioTimelineOfAnEarlierRing(t *testing.T) {
	cfg := scriptConfig()
	cfg.Trace = true
	s := ring3(t, cfg)
	s.lost("c", "gone",
		"drop lost c (rank 2): gone",
		"change lost c ring 1 step 10: gone",
		"ring 1 failed (c, reported false, waiting for \"\"): lost c: gone",
		"timer ring-end 15s",
		"abort ring 1 [a b]: lost worker c (rank 2, c:1): gone")
	s.do(failed("a", 0, 10, "aborted"), "member failed a waiting for \"\"")
	s.do(failed("b", 1, 10, "aborted"), "member failed b waiting for \"\"",
		"stop ring-end",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"start ring 2 at 10: a b")
	s.do(Traced{1, 2})
	s.do(Traced{1, 0})
	s.finishRing(2, 10, []string{"a", "b"},
		"checkpoint 100 final=true",
		"steps 10-99 rank 0 recovered after 0s",
		"finished a 90 steps",
		"steps 10-99 rank 1",
		"finished b 90 steps")
	s.do(Traced{2, 1}, "trace of rank 1")
	s.do(Traced{2, 0}, "trace of rank 0", "finish completed at 100")
}

// TestScenarioFailureAfterTheFinalState: the final state is in (rank 0
// completed the last all-reduce) when a member's ring fails under it, its
// last all-gather cut short. Like a member lost then, it is done: the job
// completes at once, rather than wait for the ring's end to time out and
// drop the members that finished (which then join again, to a job that
// is over), and a traced job does not wait for its timeline.
func TestScenarioFailureAfterTheFinalState(t *testing.T) {
	cfg := scriptConfig()
	cfg.Trace = true
	s := ring3(t, cfg)
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.do(Traced{1, 0}, "trace of rank 0")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 99, Steps: 90, Finished: true}}, "steps 10-99 rank 0", "finished a 100 steps")
	s.do(Traced{1, 1}, "trace of rank 1")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 1", "finished b 100 steps")
	s.do(failed("c", 2, 99, "receive from rank 1: connection reset"), "member failed c waiting for \"\"", "finish completed at 100")
}

// TestScenarioFinalStateOfALostRankZero: rank 0 uploaded the final state
// and was then declared lost, its upload arriving after: the state is the
// job's (rank 0 completed the last all-reduce). The job completes as it
// comes in, rather than wait for the failed ring's end to time out and
// drop the members that finished, which would join again a job that is
// over.
func TestScenarioFinalStateOfALostRankZero(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 1", "finished b 100 steps")
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 2", "finished c 100 steps")
	s.lost("a", "gossip: the node failed",
		"drop lost a (rank 0): gossip: the node failed",
		"change lost a ring 1 step 10: gossip: the node failed",
		"ring 1 failed (a, reported false, waiting for \"\"): lost a: gossip: the node failed",
		"timer ring-end 15s",
		"abort ring 1 [b c]: lost worker a (rank 0, a:1): gossip: the node failed")
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true", "stop ring-end", "finish completed at 100")
}

// TestScenarioEvaluationPendingAtTheEnd: the final state came in from a
// rank 0 declared lost while an epoch's evaluation still runs. The job
// completes once the evaluation is over, not before (its metrics would be
// missing from the summary), and the ring's end timing out meanwhile does
// not drop the members that finished.
func TestScenarioEvaluationPendingAtTheEnd(t *testing.T) {
	s := ring3(t, scriptConfig())
	s.do(Uploaded{Ring: 1, Step: 50, Epoch: 0, Checkpoint: true, EpochEnd: true}, "checkpoint 50 final=false", "evaluate epoch 0 step 50")
	s.do(Reported{Report{Worker: "b", Ring: 1, Rank: 1, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 1", "finished b 100 steps")
	s.do(Reported{Report{Worker: "c", Ring: 1, Rank: 2, Step: 99, Steps: 1, Finished: true}}, "steps 99-99 rank 2", "finished c 100 steps")
	s.lost("a", "gossip: the node failed",
		"drop lost a (rank 0): gossip: the node failed",
		"change lost a ring 1 step 10: gossip: the node failed",
		"ring 1 failed (a, reported false, waiting for \"\"): lost a: gossip: the node failed",
		"timer ring-end 15s",
		"abort ring 1 [b c]: lost worker a (rank 0, a:1): gossip: the node failed")
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.after(15 * time.Second).do(Fired{RingEndTimer})
	s.do(Evaluated{}, "finish completed at 100")

	// The others' rings fail under them meanwhile: no ring ends, none
	// starts (to redo a step whose state is in); the job waits for the
	// evaluation.
	s = ring3(t, scriptConfig())
	s.do(Uploaded{Ring: 1, Step: 50, Epoch: 0, Checkpoint: true, EpochEnd: true}, "checkpoint 50 final=false", "evaluate epoch 0 step 50")
	s.lost("a", "gossip: the node failed",
		"drop lost a (rank 0): gossip: the node failed",
		"change lost a ring 1 step 10: gossip: the node failed",
		"ring 1 failed (a, reported false, waiting for \"\"): lost a: gossip: the node failed",
		"timer ring-end 15s",
		"abort ring 1 [b c]: lost worker a (rank 0, a:1): gossip: the node failed")
	s.do(Uploaded{Ring: 1, Step: 100, Epoch: 1, Checkpoint: true, Final: true}, "checkpoint 100 final=true")
	s.do(failed("b", 1, 99, "aborted"), "member failed b waiting for \"\"")
	s.do(failed("c", 2, 99, "aborted"), "member failed c waiting for \"\"")
	s.do(Evaluated{}, "stop ring-end", "finish completed at 100")
}

// TestScenarioSilentMemberIsNamed: a member that never reports how its
// ring ended (frozen, its process stopped) is lost when the ring's end
// times out; when the job then gives up for want of workers, it names it.
func TestScenarioSilentMemberIsNamed(t *testing.T) {
	cfg := scriptConfig()
	cfg.MinWorkers = 3
	s := ring3(t, cfg)
	s.do(failed("a", 0, 10, "receive from rank 2: deadline exceeded"),
		"member failed a waiting for \"\"",
		"ring 1 failed (a, reported true, waiting for \"\"): receive from rank 2: deadline exceeded",
		"change ring-failed a ring 1 step 10: receive from rank 2: deadline exceeded",
		"timer ring-end 15s",
		"abort ring 1 [a b c]: receive from rank 2: deadline exceeded")
	s.do(failed("b", 1, 10, "aborted"), "member failed b waiting for \"\"")
	s.after(15*time.Second).do(Fired{RingEndTimer},
		"drop silent c (rank 2): did not report within 15s after its ring ended",
		"change lost c ring 1 step 10: did not report within 15s after its ring ended",
		"ring 1 ended failed=true committed 10 survivors 2 rollback=false credits [{a 10} {b 10} {c 10}]",
		"rewind 10",
		"wait for joins 2 of 3",
		"timer join 30s")
	s.after(30*time.Second).do(Fired{JoinTimer},
		"finish failed at 10: waited 30s for 3 workers, 2 joined (a, b); missing 1; lost: c at step 10 (did not report within 15s after its ring ended)")
}

// TestScenarioJoinDuringShutdown: a worker that joins while a shutdown
// pauses the ring for its checkpoint asks for no pause of its own and
// enters no ring: the job stops at the checkpoint, and a report or upload
// after that changes nothing.
func TestScenarioJoinDuringShutdown(t *testing.T) {
	cfg := scriptConfig()
	cfg.Checkpointing, cfg.MaxWorkers = true, 4
	s := ring3(t, cfg)
	s.do(Shutdown{}, "timer ring-end 15s", "pause ring 1 [a b c] with a checkpoint: shutting down")
	s.join("d")
	s.do(Uploaded{Ring: 1, Step: 12, Epoch: 0, Checkpoint: true}, "checkpoint 12 final=false")
	s.do(paused("a", 1, 0, 12))
	s.do(paused("b", 1, 1, 12))
	s.do(paused("c", 1, 2, 12),
		"stop ring-end",
		"ring 1 ended failed=false committed 12 survivors 3 rollback=false credits [{a 12} {b 12} {c 12}]",
		"finish shut down at 12")
	s.do(Reported{Report{Worker: "a", Ring: 1, Rank: 0, Step: 12, Steps: 1}})
	s.do(Uploaded{Ring: 1, Step: 16, Epoch: 0, Checkpoint: true})
	s.join("e")
}

// TestScenarioNonFiniteOnNoOnesBatch: a non-finite step that no member
// says was its own batch's fails the job saying why, not "on a worker":
// the members' own explanation (a float16 sum that overflowed while every
// gradient was finite), or the members lost before they could say.
func TestScenarioNonFiniteOnNoOnesBatch(t *testing.T) {
	overflow := "non-finite gradient sum at step 10: every worker's gradient was finite; the sum overflowed float16's range"
	fatal := func(id string, rank int) Reported {
		return Reported{Report{Worker: id, Ring: 1, Rank: rank, Status: ReportFailed, Applied: 10, Step: 10, Fatal: true, Error: overflow}}
	}
	s := ring3(t, scriptConfig())
	s.do(fatal("a", 0),
		"member failed a waiting for \"\"",
		"ring 1 failed (a, reported true, waiting for \"\"): "+overflow,
		"change ring-failed a ring 1 step 10: "+overflow,
		"timer ring-end 15s")
	s.do(fatal("b", 1), "member failed b waiting for \"\"")
	s.do(fatal("c", 2), "member failed c waiting for \"\"", "stop ring-end",
		"finish failed at 0: the gradient of step 10 was not finite on any worker's own batch: "+overflow)

	s = ring3(t, scriptConfig())
	s.do(fatal("a", 0),
		"member failed a waiting for \"\"",
		"ring 1 failed (a, reported true, waiting for \"\"): "+overflow,
		"change ring-failed a ring 1 step 10: "+overflow,
		"timer ring-end 15s")
	s.do(fatal("b", 1), "member failed b waiting for \"\"")
	s.lost("c", "its Join stream ended",
		"drop lost c (rank 2): its Join stream ended",
		"change lost c ring 1 step 10: its Join stream ended",
		"stop ring-end",
		"finish failed at 0: the gradient of step 10 was not finite (NaN or ±Inf) on none of the workers that reported it; lost before saying: c "+
			"(a diverging learning rate or corrupt data are the usual causes; -nonfinite skip skips such steps instead)")
}
