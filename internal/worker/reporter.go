package worker

import (
	"context"
	"log/slog"
	"sync"

	pb "ringtrain/proto"
)

// reporter owns the Report stream: the training loop hands it reports
// without waiting for the network, and one goroutine sends them in order.
type reporter struct {
	stream  pb.Coordinator_ReportClient
	reports chan *pb.WorkerReport
	log     *slog.Logger
	wg      sync.WaitGroup
	once    sync.Once
}

// reportBacklog is how many reports may wait to be sent before the training
// loop waits for the network.
const reportBacklog = 4096

func startReporter(ctx context.Context, client pb.CoordinatorClient, log *slog.Logger) (*reporter, error) {
	stream, err := client.Report(ctx)
	if err != nil {
		return nil, err
	}
	r := &reporter{stream: stream, reports: make(chan *pb.WorkerReport, reportBacklog), log: log}
	r.wg.Add(1)
	go r.sendAll()
	return r, nil
}

func (r *reporter) sendAll() {
	defer r.wg.Done()
	failed := false
	for rep := range r.reports {
		if failed {
			continue // drain; the session notices the lost coordinator
		}
		if err := r.stream.Send(rep); err != nil {
			r.log.Warn("report stream broke", "err", err)
			failed = true
		}
	}
	if !failed {
		r.stream.CloseAndRecv()
	}
}

// send queues a report.
func (r *reporter) send(rep *pb.WorkerReport) { r.reports <- rep }

// close sends what is queued and ends the stream.
func (r *reporter) close() {
	r.once.Do(func() { close(r.reports) })
	r.wg.Wait()
}
