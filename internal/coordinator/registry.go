package coordinator

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"ringtrain/internal/control"
	pb "ringtrain/proto"
)

// maxRegistered bounds the workers a coordinator keeps track of (ring
// members and those waiting to enter).
const maxRegistered = 1024

// member is a worker that joined.
type member struct {
	id, addr, host string
	pid            int64
	// key tells this join of the worker from its others, for the ring
	// lifecycle.
	key uint64
	// instructions carries what the Join handler streams to the worker.
	instructions chan *pb.Instruction
	// ended is set once the worker's Join stream is over.
	ended atomic.Bool
	// dropped is closed, once, when the coordinator gives the worker up
	// (declared lost while its Join stream may still be open): the Join
	// handler then ends the stream with dropCause, and the worker, if it
	// is alive after all, joins again as a new member.
	dropped   chan struct{}
	dropOnce  sync.Once
	dropCause error

	// rank is the member's rank in the current ring, -1 outside it; the
	// supervise loop owns it.
	rank int
}

func (m *member) String() string {
	if m.rank >= 0 {
		return fmt.Sprintf("worker %s (rank %d, %s)", m.id, m.rank, m.addr)
	}
	return fmt.Sprintf("worker %s (%s)", m.id, m.addr)
}

// drop gives the worker up: its Join stream ends with cause.
func (m *member) drop(cause error) {
	m.dropOnce.Do(func() {
		m.dropCause = cause
		close(m.dropped)
	})
}

// send queues an instruction without blocking; it reports false when the
// worker is not reading its instructions.
func (m *member) send(in *pb.Instruction) bool {
	select {
	case m.instructions <- in:
		return true
	default:
		return false
	}
}

// registry holds the workers that joined. Join handlers add to it; the
// supervise loop reads it and removes from it.
type registry struct {
	mu   sync.Mutex
	byID map[string]*member
	keys uint64 // the last key given
}

func newRegistry() *registry { return &registry{byID: map[string]*member{}} }

// add registers a worker. A worker may take the id of one whose stream has
// ended (it restarted); a live duplicate is refused.
func (rg *registry) add(req *pb.JoinRequest) (*member, error) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if old, ok := rg.byID[req.WorkerId]; ok && !old.ended.Load() {
		return nil, fmt.Errorf("a worker named %q has already joined (from %s)", req.WorkerId, old.addr)
	}
	if len(rg.byID) >= maxRegistered {
		return nil, fmt.Errorf("the job already tracks %d workers", maxRegistered)
	}
	rg.keys++
	m := &member{key: rg.keys, id: req.WorkerId, addr: req.RingAddr, host: req.Hostname, pid: req.Pid, rank: -1,
		instructions: make(chan *pb.Instruction, 64), dropped: make(chan struct{})}
	rg.byID[m.id] = m
	return m, nil
}

// remove forgets m (not a newer worker of the same id).
func (rg *registry) remove(m *member) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if rg.byID[m.id] == m {
		delete(rg.byID, m.id)
	}
}

// get returns the member of an id.
func (rg *registry) get(id string) *member {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.byID[id]
}

// all returns every registered worker, in natural id order.
func (rg *registry) all() []*member {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	var out []*member
	for _, m := range rg.byID {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return control.CompareIDs(a.id, b.id) })
	return out
}
