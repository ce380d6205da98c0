package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	pb "ringtrain/proto"
)

// member is a joined worker.
type member struct {
	id, addr, host string
	pid            int64
	rank           int
	// instructions carries what the Join handler streams to the worker.
	instructions chan *pb.Instruction
}

func (m *member) String() string {
	return fmt.Sprintf("worker %s (rank %d, %s)", m.id, m.rank, m.addr)
}

// membership is the set of joined workers. Handlers add to it concurrently;
// once the ring is complete it is frozen and ranks are assigned.
type membership struct {
	mu struct {
		sync.Mutex
		joined []*member
		ranked []*member // by rank, once assigned
	}
	world int
}

func newMembership(world int) membership { return membership{world: world} }

// add registers a worker. It fails for a duplicate id or a full ring.
func (ms *membership) add(req *pb.JoinRequest) (*member, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.mu.ranked != nil || len(ms.mu.joined) == ms.world {
		return nil, fmt.Errorf("the job already has its %d workers", ms.world)
	}
	for _, m := range ms.mu.joined {
		if m.id == req.WorkerId {
			return nil, fmt.Errorf("a worker named %q has already joined (from %s)", req.WorkerId, m.addr)
		}
	}
	m := &member{id: req.WorkerId, addr: req.RingAddr, host: req.Hostname, pid: req.Pid, rank: -1,
		instructions: make(chan *pb.Instruction, 2)}
	ms.mu.joined = append(ms.mu.joined, m)
	return m, nil
}

// remove forgets a worker that left before the ring was complete.
func (ms *membership) remove(m *member) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.mu.ranked == nil {
		ms.mu.joined = slices.DeleteFunc(ms.mu.joined, func(x *member) bool { return x == m })
	}
}

// complete reports whether every worker has joined.
func (ms *membership) complete() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.mu.joined) == ms.world
}

// assign freezes the membership and gives ranks in the order of the worker
// ids, so that a job's ring layout does not depend on who joined first.
func (ms *membership) assign() []*member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ranked := slices.Clone(ms.mu.joined)
	slices.SortFunc(ranked, func(a, b *member) int { return naturalCompare(a.id, b.id) })
	for r, m := range ranked {
		m.rank = r
	}
	ms.mu.ranked = ranked
	return ranked
}

// byRank returns the member of a rank, or nil before assignment.
func (ms *membership) byRank(rank int32) *member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if rank < 0 || int(rank) >= len(ms.mu.ranked) {
		return nil
	}
	return ms.mu.ranked[rank]
}

// all returns every joined worker.
func (ms *membership) all() []*member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.mu.joined)
}

// ids lists the joined workers' ids.
func (ms *membership) ids() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var ids []string
	for _, m := range ms.mu.joined {
		ids = append(ids, m.id)
	}
	return ids
}

// naturalCompare orders strings with embedded numbers numerically, so that
// worker-2 comes before worker-10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			if c := compareNumbers(da, db); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return strings.Compare(a[:1], b[:1])
		}
		a, b = a[1:], b[1:]
	}
	return strings.Compare(a, b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
