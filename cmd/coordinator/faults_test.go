package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringtrain/internal/faultnet"
)

// faultJob is a coordinator with three worker processes, w-0 to w-2; the
// others reach w-1's ring port only through a fault-injecting proxy.
type faultJob struct {
	*job
	proxy   *faultnet.Proxy
	workers map[string]*exec.Cmd
	summary string
}

// faultArgs are the job's settings: deterministic, so that a disturbed
// run must end with the weights of an undisturbed one, and short
// all-reduce deadlines, so that faults surface quickly.
var faultArgs = []string{"-batch", "96", "-max-steps", "300", "-seed", "11", "-deterministic", "-allreduce-timeout", "1s", "-hash-every", "10"}

func startFaultJob(t *testing.T, extra ...string) *faultJob {
	t.Helper()
	dir := t.TempDir()
	fj := &faultJob{workers: map[string]*exec.Cmd{}, summary: filepath.Join(dir, "summary.json")}
	args := append([]string{"-workers", "3", "-listen", "127.0.0.1:0", "-gossip-listen", "127.0.0.1:0", "-metrics-listen", "-",
		"-summary", fj.summary, "-checkpoint", ""}, faultArgs...)
	fj.job = startJob(t, append(args, extra...)...)
	grpcAddr, gossip := fj.listening(t)
	// The proxy's target, w-1's ring port, is known once w-1 logs it.
	p, err := faultnet.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	fj.proxy = p
	fj.workers["w-0"] = startWorker(t, "w-0", grpcAddr, gossip)
	fj.workers["w-1"] = startProxiedWorker(t, "w-1", grpcAddr, gossip, p)
	fj.workers["w-2"] = startWorker(t, "w-2", grpcAddr, gossip)
	return fj
}

// startProxiedWorker starts a worker whose ring port, of its own choosing,
// the others reach only through p: it advertises p's address, and p
// forwards to the port the worker's log names.
func startProxiedWorker(t *testing.T, id, coordinator, gossip string, p *faultnet.Proxy) *exec.Cmd {
	t.Helper()
	cmd := workerCmd(id, coordinator, gossip, "-advertise", p.Addr())
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
	return cmd
}

// undisturbedSHA is the final weights' hash of the fault jobs' settings.
func undisturbedSHA(t *testing.T) string {
	t.Helper()
	return runToEnd(t, append([]string{"-local-workers", "3"}, faultArgs...)...).WeightsSHA256
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

// TestPartitionedLinkRecovers black-holes the link into w-1 during
// training: the all-reduce deadline fires, the coordinator names w-1 as the
// member starved first, the ring re-forms once the link is back, and the
// job ends with the weights of an undisturbed run.
func TestPartitionedLinkRecovers(t *testing.T) {
	want := undisturbedSHA(t)
	fj := startFaultJob(t)
	fj.waitFor(t, " step ", 2*time.Minute)
	fj.proxy.SetMode(faultnet.Blackhole)
	fj.waitFor(t, `"msg":"ring failed"`, 30*time.Second)
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

// TestCutLinkFailsNamingThePeer cuts w-1's ring port for good: every ring
// fails before a step, and after three the job fails naming the address
// that refuses connections; every process exits.
func TestCutLinkFailsNamingThePeer(t *testing.T) {
	fj := startFaultJob(t)
	fj.waitFor(t, " step ", 2*time.Minute)
	fj.proxy.SetMode(faultnet.Cut)
	err, took := fj.wait(t, 2*time.Minute)
	log := strings.Join(fj.all, "\n")
	if err == nil || !strings.Contains(log, "3 rings in a row failed before completing a step") || !strings.Contains(log, fj.proxy.Addr()+"): ") {
		t.Fatalf("coordinator exited with %v after %v; want a failure naming %s:\n%s", err, took, fj.proxy.Addr(), log)
	}
	t.Logf("failed after %v", took)
	for id, w := range fj.workers {
		done := make(chan error, 1)
		go func() { done <- w.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("worker %s still running 20s after the job failed", id)
		}
	}
}

// TestStragglerIsNamed freezes w-1 (SIGSTOP) for longer than the all-reduce
// deadline and the abort's grace, so that its own report comes too late to
// be a witness, but shorter than gossip takes to declare it dead (at least
// 4s of suspicion after a failed probe): the ring fails, the coordinator
// names w-1 as the straggler, and the job completes with the undisturbed
// weights.
func TestStragglerIsNamed(t *testing.T) {
	want := undisturbedSHA(t)
	fj := startFaultJob(t)
	fj.waitFor(t, " step ", 2*time.Minute)
	pid := fj.workers["w-1"].Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s := fj.finish(t)
	stragglers := s.changes("straggler")
	t.Logf("rings %d, stragglers %+v", s.Rings, stragglers)
	if len(stragglers) == 0 || stragglers[0].Worker != "w-1" {
		t.Fatalf("stragglers %+v: want w-1; failures:\n%s", stragglers, fj.failures())
	}
	if s.WeightsSHA256 != want {
		t.Fatalf("weights %s after the straggler, %s undisturbed", s.WeightsSHA256, want)
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
