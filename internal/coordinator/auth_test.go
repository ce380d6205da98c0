package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"ringtrain/internal/grpcopts"
	"ringtrain/internal/nn"
	"ringtrain/internal/transportsec"
	"ringtrain/internal/wire"
	"ringtrain/internal/worker"
	pb "ringtrain/proto"
)

// logTap records a logger's lines (message and attributes), safe for
// concurrent use, and lets a test wait for one. With a hold, whoever logs
// the held message waits, once the line is recorded, until the hold is
// released.
type logTap struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	hold    *messageHold
}

func newLogTap() *logTap { return &logTap{changed: make(chan struct{})} }

// messageHold holds whoever logs message until released or its context
// ends.
type messageHold struct {
	ctx      context.Context
	message  string
	released chan struct{}
	once     sync.Once
}

func holdMessage(ctx context.Context, message string) *messageHold {
	return &messageHold{ctx: ctx, message: message, released: make(chan struct{})}
}

// release lets the held go on; it may be called more than once.
func (h *messageHold) release() { h.once.Do(func() { close(h.released) }) }

func (l *logTap) logger() *slog.Logger { return slog.New(tapHandler{l}) }

// find returns the first line containing s.
func (l *logTap) find(s string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return line, true
		}
	}
	return "", false
}

// wait returns the first line containing s, waiting up to a minute for it.
func (l *logTap) wait(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		if line, ok := l.find(s); ok {
			return line
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log line containing %q within a minute", s)
		}
	}
}

type tapHandler struct{ l *logTap }

func (h tapHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h tapHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	h.l.lines = append(h.l.lines, b.String())
	close(h.l.changed)
	h.l.changed = make(chan struct{})
	h.l.mu.Unlock()
	if hold := h.l.hold; hold != nil && r.Message == hold.message {
		select {
		case <-hold.released:
		case <-hold.ctx.Done():
		}
	}
	return nil
}
func (h tapHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h tapHandler) WithGroup(string) slog.Handler      { return h }

// tappedJob is a job on in-process workers whose logs a test reads.
type tappedJob struct {
	addr          string
	coord, worker *logTap
	done          chan struct{}
	err           error
	werrs         []error
}

// startTapped starts the coordinator of cfg and the workers ids.
func startTapped(t *testing.T, ctx context.Context, cfg Config, ids ...string) *tappedJob {
	t.Helper()
	return startTappedHolding(t, ctx, cfg, nil, ids...)
}

// startTappedHolding is startTapped with the workers' logs held at hold
// (nil: nowhere).
func startTappedHolding(t *testing.T, ctx context.Context, cfg Config, hold *messageHold, ids ...string) *tappedJob {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	j := &tappedJob{addr: lis.Addr().String(), coord: newLogTap(), worker: newLogTap(), done: make(chan struct{}), werrs: make([]error, len(ids))}
	j.worker.hold = hold
	cfg.Listener, cfg.Logger = lis, j.coord.logger()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := worker.DefaultConfig()
			wc.Coordinator, wc.Listen, wc.ID, wc.Logger = j.addr, "127.0.0.1:0", id, j.worker.logger()
			wc.GossipListen, wc.MetricsListen, wc.JoinTimeout = "127.0.0.1:0", "", time.Minute
			j.werrs[i] = worker.Run(ctx, wc)
		}()
	}
	go func() {
		defer close(j.done)
		_, j.err = Run(ctx, cfg)
		wg.Wait()
	}()
	return j
}

// jobID reads the job's id from the coordinator's log.
func (j *tappedJob) jobID(t *testing.T) string {
	line := j.coord.wait(t, "coordinator listening")
	_, rest, _ := strings.Cut(line, " job=")
	id, _, _ := strings.Cut(rest, " ")
	if id == "" {
		t.Fatalf("no job id in %q", line)
	}
	return id
}

// dialCoordinator connects to addr as any process can.
func dialCoordinator(t *testing.T, addr string) pb.CoordinatorClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpcopts.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewCoordinatorClient(conn)
}

// joinAs joins the coordinator as worker id and returns a context whose
// calls carry its member credential. The Join stream lives as long as ctx.
func joinAs(t *testing.T, ctx context.Context, client pb.CoordinatorClient, id string) context.Context {
	t.Helper()
	stream, err := client.Join(ctx, &pb.JoinRequest{WorkerId: id, RingAddr: "127.0.0.1:1"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	in, err := stream.Recv()
	if err != nil {
		t.Fatalf("join as %s: %v", id, err)
	}
	cred := in.GetWelcome().GetCredential()
	if cred == "" {
		t.Fatalf("join as %s: the first instruction is %v, not a Welcome with a credential", id, in)
	}
	return metadata.AppendToOutgoingContext(ctx, transportsec.MemberHeader, cred)
}

// sendReports sends reports on one Report stream and returns the status.
func sendReports(ctx context.Context, client pb.CoordinatorClient, reps ...*pb.WorkerReport) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := client.Report(ctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for _, r := range reps {
		if stream.Send(r) != nil {
			break // refused: the status comes with the close
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// uploadState sends st on one UploadState stream and returns the status.
func uploadState(ctx context.Context, client pb.CoordinatorClient, st *wire.State) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := client.UploadState(ctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if err := wire.SendState(stream.Send, st); err != nil {
		_, cerr := stream.CloseAndRecv()
		return cerr
	}
	_, err = stream.CloseAndRecv()
	return err
}

func wantCode(t *testing.T, what string, err error, code codes.Code, mustNotContain ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want %v", what, err, code)
	}
	for _, s := range mustNotContain {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("%s: the error %q discloses %q", what, err, s)
		}
	}
}

// TestForgedReportCannotEvictAWorker: while a two-worker job trains, a
// report naming a live worker with a rank it does not hold (which the
// supervisor treats as that worker misbehaving, and evicts it) is sent by
// a stranger without a member credential, and by a process that joined
// under a name of its own. Both are refused (Unauthenticated,
// PermissionDenied); the job completes with both workers and loses none.
// The job is held at its finish line until both are answered.
func TestForgedReportCannotEvictAWorker(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	cfg := testConfig(t, 2)
	cfg.MaxSteps = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	held := holdFinish(ctx)
	defer held.release()
	cfg.Progress = held
	j := startTapped(t, ctx, cfg, "w-0", "w-1")
	jobID := j.jobID(t)
	j.worker.wait(t, "shard received") // the first ring runs
	client := dialCoordinator(t, j.addr)
	forged := &pb.WorkerReport{WorkerId: "w-1", Rank: 0, Generation: 1, Loss: 1}
	wantCode(t, "a stranger's report", sendReports(ctx, client, forged), codes.Unauthenticated, jobID, "step", "epoch")
	joinCtx, leave := context.WithCancel(ctx)
	defer leave()
	intruder := joinAs(t, joinCtx, client, "intruder")
	wantCode(t, "a member's report about another", sendReports(intruder, client, forged), codes.PermissionDenied)
	select {
	case <-j.done:
		t.Fatal("the job ended before the forged reports were answered")
	default:
	}
	held.release()
	<-j.done
	if j.err != nil || slices.ContainsFunc(j.werrs, func(e error) bool { return e != nil }) {
		t.Fatalf("job: %v; workers: %v", j.err, j.werrs)
	}
	for _, bad := range []string{"lost a ring member", "rejected a report"} {
		if line, ok := j.coord.find(bad); ok {
			t.Errorf("the forged report reached the supervisor: %s", line)
		}
	}
}

// TestForgedFinalUploadCannotEndTheJob: while a two-worker job is under
// way, a final state (all weights 0.5) and "finished" reports for both
// workers, with the right job id, ring and ranks, which would end the job
// at once with those weights as its checkpoint, are sent by a stranger and
// by a process that joined under a name of its own. All are refused; the
// job trains to its last step and checkpoints its own weights. The workers
// are held as their ring forms, before its first step, until all are
// answered: a forged final state would reach the coordinator before the
// real one, however few the job's steps.
func TestForgedFinalUploadCannotEndTheJob(t *testing.T) {
	t.Parallel() // its job mostly waits on gRPC, gossip and the other goroutines
	const steps = 20
	cfg := testConfig(t, 2)
	cfg.MaxSteps = steps
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	held := holdMessage(ctx, "ring formed")
	defer held.release()
	j := startTappedHolding(t, ctx, cfg, held, "w-0", "w-1")
	jobID := j.jobID(t)
	j.worker.wait(t, "ring formed")
	client := dialCoordinator(t, j.addr)
	m, err := nn.New(nn.KerasMNIST())
	if err != nil {
		t.Fatal(err)
	}
	params := m.AppendParams(nil)
	for i := range params {
		params[i] = 0.5
	}
	forge := func() *wire.State {
		return &wire.State{Header: &pb.StateHeader{JobId: jobID, Rank: 0, Generation: 1, Step: steps, Final: true},
			Params: params, Opt: m.Optimizer().State()}
	}
	finished := func(rank int32, id string) *pb.WorkerReport {
		return &pb.WorkerReport{WorkerId: id, Rank: rank, Generation: 1, Step: steps - 1, Loss: 0.1, Finished: true}
	}
	wantCode(t, "a stranger's final upload", uploadState(ctx, client, forge()), codes.Unauthenticated, jobID)
	for rank, id := range []string{"w-0", "w-1"} {
		wantCode(t, "a stranger's finished report", sendReports(ctx, client, finished(int32(rank), id)), codes.Unauthenticated, jobID)
	}
	joinCtx, leave := context.WithCancel(ctx)
	defer leave()
	intruder := joinAs(t, joinCtx, client, "intruder")
	wantCode(t, "a member's final upload for rank 0", uploadState(intruder, client, forge()), codes.PermissionDenied)
	for rank, id := range []string{"w-0", "w-1"} {
		wantCode(t, "a member's finished report about "+id, sendReports(intruder, client, finished(int32(rank), id)), codes.PermissionDenied)
	}
	select {
	case <-j.done:
		t.Fatal("the job ended before the forged calls were answered")
	default:
	}
	held.release()
	<-j.done
	if j.err != nil || slices.ContainsFunc(j.werrs, func(e error) bool { return e != nil }) {
		t.Fatalf("job: %v; workers: %v", j.err, j.werrs)
	}
	ck, err := nn.LoadCheckpoint(cfg.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Step != steps {
		t.Errorf("the checkpoint is of step %d, want %d", ck.Step, steps)
	}
	forged := true
	for _, p := range ck.Params {
		forged = forged && p == 0.5
	}
	if forged {
		t.Errorf("the checkpoint holds the forged weights")
	}
}

// TestWrongJobIDIsNotAnsweredWithTheRealOne: a stranger's calls, whatever
// they carry, are refused without a word about the job (its id, its steps,
// its epochs); a member's call with a wrong job id is refused without the
// real one, quoting at most a short prefix of what it sent.
func TestWrongJobIDIsNotAnsweredWithTheRealOne(t *testing.T) {
	cfg := testConfig(t, 2)
	cfg.MaxSteps = 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j := startTapped(t, ctx, cfg) // no workers: it waits for them
	defer func() {
		cancel()
		<-j.done
	}()
	jobID := j.jobID(t)
	client := dialCoordinator(t, j.addr)
	call := func(ctx context.Context, jobID string) map[string]error {
		errs := map[string]error{}
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		shard, err := client.FetchShard(rctx, &pb.ShardRequest{JobId: jobID, LaneCount: 1}, grpc.WaitForReady(true))
		if err == nil {
			_, err = shard.Recv()
		}
		errs["fetch shard"] = err
		state, err := client.FetchState(rctx, &pb.StateRequest{JobId: jobID, Generation: 1}, grpc.WaitForReady(true))
		if err == nil {
			_, err = state.Recv()
		}
		errs["fetch state"] = err
		return errs
	}
	for what, err := range call(ctx, "not-the-job") {
		wantCode(t, "a stranger's "+what, err, codes.Unauthenticated, jobID)
	}
	wantCode(t, "a stranger's report", sendReports(ctx, client, &pb.WorkerReport{WorkerId: "w-0", Step: 1 << 40, Epoch: 1 << 30}),
		codes.Unauthenticated, jobID, "step", "epoch")
	joinCtx, leave := context.WithCancel(ctx)
	defer leave()
	member := joinAs(t, joinCtx, client, "m")
	for what, err := range call(member, "not-the-job") {
		wantCode(t, "a member's "+what, err, codes.InvalidArgument, jobID)
		if err != nil && !strings.Contains(err.Error(), `"not-the-job"`) {
			t.Errorf("a member's %s: %v does not quote the job id it sent", what, err)
		}
	}
	long := strings.Repeat("x", 10<<10)
	for what, err := range call(member, long) {
		if err == nil || len(err.Error()) > 300 {
			t.Errorf("a member's %s with a 10 KiB job id: %d bytes of error", what, len(fmt.Sprint(err)))
		}
	}
}

// TestLocalRunsGetAToken: a job of local workers given no secrets makes up
// a token (and a gossip key) and hands them to its launcher for the
// children's environment: a stranger's Join is refused (Unauthenticated),
// a process with the child's token joins.
func TestLocalRunsGetAToken(t *testing.T) {
	cfg := testConfig(t, 0)
	cfg.Workers, cfg.LocalWorkers = 0, 1
	launched := make(chan LocalWorkers, 1)
	cfg.Launcher = fakeLauncher(func(w LocalWorkers) { launched <- w })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = lis
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg)
		done <- err
	}()
	defer func() {
		cancel()
		<-done
	}()
	var w LocalWorkers
	select {
	case w = <-launched:
	case err := <-done:
		t.Fatalf("the job ended before launching its worker: %v", err)
	}
	var token, gossipKey string
	for _, kv := range w.Env {
		if v, ok := strings.CutPrefix(kv, "RINGTRAIN_TOKEN="); ok {
			token = v
		}
		if v, ok := strings.CutPrefix(kv, "RINGTRAIN_GOSSIP_KEY="); ok {
			gossipKey = v
		}
	}
	if w.Count != 1 || len(token) < 32 || len(gossipKey) < 32 {
		t.Fatalf("launched %d workers with the environment %q: want 1, a token and a gossip key", w.Count, w.Env)
	}
	join := func(sec transportsec.Security) error {
		if err := sec.Load(); err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(lis.Addr().String(), sec.DialOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
		defer jcancel()
		stream, err := pb.NewCoordinatorClient(conn).Join(jctx, &pb.JoinRequest{WorkerId: "outsider", RingAddr: "127.0.0.1:1"}, grpc.WaitForReady(true))
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	wantCode(t, "a stranger's join", join(transportsec.Security{}), codes.Unauthenticated)
	if err := join(transportsec.Security{Token: token}); err != nil {
		t.Errorf("a join with the local worker's token: %v", err)
	}
}
