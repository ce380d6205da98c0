package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/faultnet"
)

// faultJob is a coordinator with three worker processes, w-0 to w-2; the
// others reach w-1's ring port only through a fault-injecting proxy.
type faultJob struct {
	*job
	proxy   *faultnet.Proxy
	summary string
}

// faultArgs are the job's settings: deterministic, so that a disturbed
// run must end with the weights of an undisturbed one, and short
// all-reduce deadlines, so that faults surface quickly.
func faultArgs(t *testing.T) []string {
	return []string{"-batch", "96", "-max-steps", "300", "-seed", "11", "-deterministic", "-allreduce-timeout", "1s", "-hash-every", "10",
		"-data", smallData(t)}
}

func startFaultJob(t *testing.T, extra ...string) *faultJob {
	t.Helper()
	dir := t.TempDir()
	fj := &faultJob{summary: filepath.Join(dir, "summary.json")}
	args := append([]string{"-workers", "3", "-listen", "127.0.0.1:0", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "-",
		"-summary", fj.summary, "-checkpoint", ""}, faultArgs(t)...)
	fj.job = startJob(t, append(args, extra...)...)
	grpcAddr, gossip := fj.listening(t)
	// The proxy's target, w-1's ring port, is known once w-1 logs it.
	p, err := faultnet.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	fj.proxy = p
	startWorker(t, "w-0", grpcAddr, gossip)
	startProxiedWorker(t, "w-1", grpcAddr, gossip, p)
	startWorker(t, "w-2", grpcAddr, gossip)
	return fj
}

// startProxiedWorker starts a worker whose ring port, of its own choosing,
// the others reach only through p: it advertises p's address, and p
// forwards to the port the worker's log names. It declines shared memory,
// which would take its left-hand neighbour's frames past p.
func startProxiedWorker(t *testing.T, id, coordinator, gossip string, p *faultnet.Proxy) {
	t.Helper()
	cmd := workerCmd(id, coordinator, gossip, "-advertise", p.Addr(), "-shared-memory=false")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if !testing.Verbose() {
				fmt.Fprintln(os.Stderr, line) // as startWorker does
			}
			var e struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "ring service listening" {
				listening <- e.Addr
			}
		}
	}()
	select {
	case addr := <-listening:
		p.SetTarget(addr)
	case <-time.After(time.Minute):
		t.Fatalf("worker %s logged no ring address within a minute", id)
	}
}

// undisturbedSHA is the final weights' hash of the fault jobs' settings,
// computed by the first test that asks for it.
func undisturbedSHA(t *testing.T) string {
	t.Helper()
	undisturbed.mu.Lock()
	defer undisturbed.mu.Unlock()
	if undisturbed.sha == "" {
		undisturbed.sha = runToEnd(t, append([]string{"-local-workers", "3"}, faultArgs(t)...)...).WeightsSHA256
	}
	return undisturbed.sha
}

var undisturbed struct {
	mu  sync.Mutex
	sha string
}

// finish waits for the job to succeed and returns its summary.
func (fj *faultJob) finish(t *testing.T) summary {
	t.Helper()
	if err, _ := fj.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, strings.Join(fj.all, "\n"))
	}
	return readSummary(t, fj.summary)
}

// failures returns the log lines about failed rings and stragglers.
func (fj *faultJob) failures() string {
	var out []string
	for _, l := range fj.all {
		if strings.Contains(l, `"member failed"`) || strings.Contains(l, `"straggler"`) || strings.Contains(l, `"ring ended"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// changes returns the membership changes of a kind.
func (s summary) changes(kind string) []membershipChange {
	var out []membershipChange
	for _, c := range s.MembershipChanges {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// The other link faults run without processes, deterministically: a
// frozen (SIGSTOP) straggler in internal/allreduce's
// TestStallNamesTheStraggler and internal/control's
// TestScenarioStragglerFrozen; a cut link in internal/allreduce's
// TestCutLinkFailsNamingThePeer, internal/control's
// TestScenarioRingFailureBudget and, over real sockets, internal/
// coordinator's TestRingFailureBudget. TestRandomFaults freezes worker
// processes with SIGSTOP.

// TestPartitionedLinkRecovers black-holes the link into w-1 during
// training: the all-reduce deadline fires, the coordinator names w-1 as the
// member starved first, the ring re-forms once the link is back, and the
// job ends with the weights of an undisturbed run.
func TestPartitionedLinkRecovers(t *testing.T) {
	want := undisturbedSHA(t)
	fj := startFaultJob(t)
	fj.waitFor(t, " step ", 2*time.Minute)
	fj.proxy.SetMode(faultnet.Blackhole)
	// The link comes back once every member has reported how the ring
	// ended: healed at the first failure, the frames it held can still
	// let w-1 finish the step the others gave up on, and its report then
	// tells of the next step, not of its wait (a full run beside a CPU
	// spinner named w-2 so).
	fj.waitFor(t, `"msg":"ring ended"`, 30*time.Second)
	fj.proxy.SetMode(faultnet.Forward)
	s := fj.finish(t)
	stragglers := s.changes("straggler")
	t.Logf("rings %d, rollbacks %d, stragglers %+v", s.Rings, s.Rollbacks, stragglers)
	if len(stragglers) == 0 || !strings.HasPrefix(stragglers[0].Cause, "w-1 ") {
		t.Fatalf("stragglers %+v: want w-1 named as the member starved first; failures:\n%s", stragglers, fj.failures())
	}
	if s.WeightsSHA256 != want {
		t.Fatalf("weights %s after the partition, %s undisturbed", s.WeightsSHA256, want)
	}
}

// TestCorruptionIsNotSummed flips one byte of the gradient stream into w-1:
// the frame checksum (or the framing) refuses it, the ring fails and
// re-forms, and the job ends with the weights of an undisturbed run: the
// corrupted bytes never reached the model.
func TestCorruptionIsNotSummed(t *testing.T) {
	want := undisturbedSHA(t)
	fj := startFaultJob(t)
	fj.waitFor(t, " step ", 2*time.Minute)
	flipped := fj.proxy.CorruptAfter(200 << 10)
	select {
	case <-flipped:
	case <-time.After(time.Minute):
		t.Fatal("no byte flipped within a minute")
	}
	s := fj.finish(t)
	failed := s.changes("ring-failed")
	t.Logf("rings %d, ring failures %+v", s.Rings, failed)
	if s.WeightsSHA256 != want {
		t.Fatalf("weights %s after the corruption, %s undisturbed", s.WeightsSHA256, want)
	}
	if len(failed) == 0 {
		t.Fatal("no ring failed: the corruption went unnoticed")
	}
}
