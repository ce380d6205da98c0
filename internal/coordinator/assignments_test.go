package coordinator

import (
	"testing"

	pb "ringtrain/proto"
)

// TestOnlyTheToldMemberUploadsTheStartState: a ring's start state, which
// the members that fetch it load, is accepted only from the member its
// assignment told to upload it, and only at the ring's start step; holding
// a rank of the ring is not enough.
func TestOnlyTheToldMemberUploadsTheStartState(t *testing.T) {
	a := newAssignments()
	ids := []string{"w-0", "w-1", "w-2"}
	a.record("w-0", &pb.Assignment{Generation: 2, Rank: 0, WorkerIds: ids, StartStep: 10})
	a.record("w-1", &pb.Assignment{Generation: 2, Rank: 1, WorkerIds: ids, StartStep: 10, UploadState: true})
	a.record("w-2", &pb.Assignment{Generation: 2, Rank: 2, WorkerIds: ids, StartStep: 10, FetchState: true})
	for _, c := range []struct {
		id   string
		ring uint32
		step uint64
		want bool
	}{
		{"w-1", 2, 10, true},
		{"w-0", 2, 10, false}, // a member of the ring, not told to
		{"w-2", 2, 10, false}, // the one that fetches it
		{"w-1", 2, 11, false}, // another step
		{"w-1", 3, 10, false}, // another ring
		{"intruder", 2, 10, false},
	} {
		if got := a.uploadsBase(c.id, c.ring, c.step); got != c.want {
			t.Errorf("%s uploads ring %d's state after %d steps: %v, want %v", c.id, c.ring, c.step, got, c.want)
		}
	}
	// Forgotten with its ring.
	a.record("w-0", &pb.Assignment{Generation: 2 + keptGenerations, Rank: 0, WorkerIds: ids})
	if a.uploadsBase("w-1", 2, 10) {
		t.Error("a ring long gone still takes its start state")
	}
}
