package coordinator

import (
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"ringtrain/internal/grpcopts"
	pb "ringtrain/proto"
)

// TestInvalidReportsAreRejected sends reports with out-of-range fields, from
// a worker that joined, to a coordinator waiting for its other worker: each
// is refused with InvalidArgument naming the field, and the coordinator
// goes on waiting.
func TestInvalidReportsAreRejected(t *testing.T) {
	cfg := testConfig(t, 2)
	cfg.MaxSteps = 10
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = lis
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg)
		done <- err
	}()
	defer func() {
		cancel()
		<-done
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpcopts.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewCoordinatorClient(conn)
	joinCtx, leave := context.WithCancel(ctx)
	defer leave()
	member := joinAs(t, joinCtx, client, "x")
	for _, c := range []struct {
		report *pb.WorkerReport
		field  string
	}{
		{&pb.WorkerReport{WorkerId: "x", Rank: -1}, "rank: -1"},
		{&pb.WorkerReport{WorkerId: "x", Rank: 1 << 20}, "rank: 1048576"},
		{&pb.WorkerReport{WorkerId: "x", Step: 10}, "step: 10, the job has 10 steps"},
		{&pb.WorkerReport{WorkerId: "x", Status: pb.ReportStatus_FAILED, Applied: 11}, "applied: 11"},
		{&pb.WorkerReport{WorkerId: "x", Status: 99}, "status: 99"},
		{&pb.WorkerReport{WorkerId: "x", Error: strings.Repeat("e", 65<<10)}, "error: 66560 bytes"},
		{&pb.WorkerReport{WorkerId: "x", Epoch: 7}, "epoch: 7"},
		{&pb.WorkerReport{WorkerId: "x", Step: 2, Loss: 1, Losses: []float64{1, 1, 1, 1}}, "losses: 4 for steps up to 2"},
		{&pb.WorkerReport{WorkerId: "x", Step: 2, Loss: 1, Losses: []float64{1, 2}}, "losses: the last is not the step's loss"},
		{&pb.WorkerReport{WorkerId: "x", Step: 2, Loss: 1, Losses: []float64{math.NaN(), 1}}, "losses: NaN for a step applied"},
	} {
		rctx, rcancel := context.WithTimeout(member, 10*time.Second)
		stream, err := client.Report(rctx, grpc.WaitForReady(true))
		if err == nil {
			// A refused Send returns io.EOF; the status comes with the close.
			_ = stream.Send(c.report)
			_, err = stream.CloseAndRecv()
		}
		rcancel()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("report %v: got %v, want InvalidArgument naming %q", c.report, err, c.field)
		}
	}
	// A client without ringtrain's send limit: the server refuses a message
	// over grpcopts.MaxMessageBytes before reading it whole.
	plain, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rctx, rcancel := context.WithTimeout(member, 30*time.Second)
	defer rcancel()
	stream, err := pb.NewCoordinatorClient(plain).Report(rctx, grpc.WaitForReady(true))
	if err == nil {
		_ = stream.Send(&pb.WorkerReport{WorkerId: "x", Error: strings.Repeat("e", grpcopts.MaxMessageBytes+1)})
		_, err = stream.CloseAndRecv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized report: got %v, want ResourceExhausted", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the coordinator stopped: %v", err)
	default:
	}
}
