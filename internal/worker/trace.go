package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "ringtrain/proto"
)

// maxTraceSpans bounds a worker's timeline (some 100 MB of JSON at the
// coordinator); later spans are counted, not kept.
const maxTraceSpans = 2_000_000

// span is one recorded interval of a step.
type span struct {
	name       string
	step       uint64
	start, end time.Time
}

// timeline records the spans of every step, for the coordinator's -trace
// file. A nil timeline records nothing.
type timeline struct {
	// mu guards the rest: the communication goroutine of an overlapped
	// step records its collectives while the step computes.
	mu      sync.Mutex
	step    uint64 // the step being recorded
	spans   []span
	dropped uint64
}

func (tl *timeline) add(name string, start, end time.Time) {
	if tl == nil {
		return
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.spans) >= maxTraceSpans {
		tl.dropped++
		return
	}
	tl.spans = append(tl.spans, span{name: name, step: tl.step, start: start, end: end})
}

// phases records a collective's two phases; it is an allreduce.Config
// Phases callback.
func (tl *timeline) phases(_ uint64, start, scattered, gathered time.Time) {
	tl.add("reduce-scatter", start, scattered)
	tl.add("all-gather", scattered, gathered)
}

// traceChunk is how many spans one upload message carries.
const traceChunk = 20_000

// upload sends the timeline to the coordinator.
func (tl *timeline) upload(ctx context.Context, client pb.CoordinatorClient, jobID string, rank int32) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	stream, err := client.UploadTrace(ctx)
	if err != nil {
		return fmt.Errorf("upload trace: %w", err)
	}
	for lo := 0; lo < len(tl.spans) || lo == 0; lo += traceChunk {
		c := &pb.TraceChunk{JobId: jobID, Rank: rank, Dropped: tl.dropped}
		for _, sp := range tl.spans[lo:min(lo+traceChunk, len(tl.spans))] {
			c.Events = append(c.Events, &pb.TraceEvent{Name: sp.name, Step: sp.step,
				StartNs: sp.start.UnixNano(), DurNs: int64(sp.end.Sub(sp.start))})
		}
		if err := stream.Send(c); err != nil {
			return fmt.Errorf("upload trace: %w", err)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("upload trace: %w", err)
	}
	return nil
}
