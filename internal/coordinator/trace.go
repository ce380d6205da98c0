package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// traceEvent is one entry of the Chrome trace-event format.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"`
	Dur  float64        `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// writeTrace writes the workers' timelines to path as Chrome trace-event
// JSON: one process per rank, a complete event per span, timestamps in
// microseconds from the earliest span.
func (c *coordinator) writeTrace(path string, s *supervisor) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("coordinator: trace: %w", err)
	}
	defer f.Close()
	origin := int64(math.MaxInt64)
	tr := s.rep
	for _, t := range tr.traces {
		for _, e := range t.events {
			origin = min(origin, e.StartNs)
		}
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	fmt.Fprint(w, `{"displayTimeUnit":"ms","traceEvents":[`)
	first := true
	emit := func(e traceEvent) error {
		if !first {
			w.WriteByte(',')
		}
		first = false
		return enc.Encode(e)
	}
	for rank := range tr.ids {
		t := tr.traces[rank]
		if t == nil {
			continue
		}
		name := fmt.Sprintf("rank %d (%s)", rank, tr.ids[rank])
		if t.dropped > 0 {
			name += fmt.Sprintf(", %d spans not recorded", t.dropped)
		}
		if err := emit(traceEvent{Name: "process_name", Ph: "M", Pid: rank, Args: map[string]any{"name": name}}); err != nil {
			return err
		}
		if err := emit(traceEvent{Name: "thread_name", Ph: "M", Pid: rank, Tid: 1, Args: map[string]any{"name": "all-reduce"}}); err != nil {
			return err
		}
		for _, e := range t.events {
			tid := 0
			if e.Name == "reduce-scatter" || e.Name == "all-gather" {
				// Overlapped with the backward pass: a track of their own.
				tid = 1
			}
			if err := emit(traceEvent{Name: e.Name, Cat: "step", Ph: "X", Pid: rank, Tid: tid,
				Ts: float64(e.StartNs-origin) / 1e3, Dur: float64(e.DurNs) / 1e3, Args: map[string]any{"step": e.Step}}); err != nil {
				return err
			}
		}
	}
	fmt.Fprint(w, "]}\n")
	if err := w.Flush(); err != nil {
		return fmt.Errorf("coordinator: trace: %w", err)
	}
	return f.Close()
}
