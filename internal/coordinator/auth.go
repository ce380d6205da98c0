package coordinator

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "ringtrain/proto"
)

// caller returns the id of the worker an incoming call comes from, proven
// by the member credential its Join stream gave it. A caller without one
// learns nothing about the job from the error.
func (c *coordinator) caller(ctx context.Context) (string, error) {
	return c.members.Verify(ctx)
}

// keptGenerations is how many of the newest rings assignments remembers.
// An upload names its ring; older rings' uploads are refused (none can
// arrive: a ring ends before the next one starts).
const keptGenerations = 16

// assignments records which worker the coordinator placed at which rank of
// which ring, as the Join handlers stream the assignments, so that an
// upload (which names its ring and rank) is accepted only from the worker
// that holds that rank.
type assignments struct {
	mu     sync.Mutex
	byRing map[uint32][]string
	newest uint32
	// latest is each worker's rank in the newest ring it was placed in.
	latest map[string]placement
	// base is, for each ring, the worker told to upload the ring's start
	// state (Assignment.upload_state) and that state's step.
	base map[uint32]baseUpload
}

type baseUpload struct {
	id   string
	step uint64
}

type placement struct {
	ring uint32
	rank int32
}

func newAssignments() *assignments {
	return &assignments{byRing: map[uint32][]string{}, latest: map[string]placement{}, base: map[uint32]baseUpload{}}
}

// record notes that worker id holds the rank of ring g that assignment a
// gives it (and, when a tells it to, uploads the ring's start state),
// forgetting rings more than keptGenerations older than the newest.
func (a *assignments) record(id string, as *pb.Assignment) {
	g, rank, size := as.Generation, as.Rank, len(as.WorkerIds)
	a.mu.Lock()
	defer a.mu.Unlock()
	if as.UploadState {
		a.base[g] = baseUpload{id: id, step: as.StartStep}
	}
	ids := a.byRing[g]
	if ids == nil {
		ids = make([]string, size)
		a.byRing[g] = ids
	}
	if rank >= 0 && int(rank) < len(ids) {
		ids[rank] = id
	}
	if p, ok := a.latest[id]; !ok || g >= p.ring {
		a.latest[id] = placement{g, rank}
	}
	if g <= a.newest {
		return
	}
	a.newest = g
	for old := range a.byRing {
		if old+keptGenerations <= g {
			delete(a.byRing, old)
			delete(a.base, old)
		}
	}
	for w, p := range a.latest {
		if p.ring+keptGenerations <= g {
			delete(a.latest, w)
		}
	}
}

// holds reports whether worker id holds rank of ring g.
func (a *assignments) holds(id string, g uint32, rank int32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := a.byRing[g]
	return rank >= 0 && int(rank) < len(ids) && ids[rank] == id
}

// uploadsBase reports whether worker id was told to upload ring g's start
// state, the state after step steps.
func (a *assignments) uploadsBase(id string, g uint32, step uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.base[g]
	return ok && b.id == id && b.step == step
}

// placed returns the newest ring worker id was placed in, and its rank.
func (a *assignments) placed(id string) (placement, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.latest[id]
	return p, ok
}

// errNotYours is the status of an upload about a rank the caller does not
// hold.
func errNotYours(what, id string, g uint32, rank int32) error {
	return status.Errorf(codes.PermissionDenied, "coordinator: %s: worker %q does not hold rank %d of ring %d", what, id, rank, g)
}
