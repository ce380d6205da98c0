package coordinator

import (
	"context"
	"errors"
	"sync"

	"ringtrain/internal/wire"
)

// stateStore holds, by ring generation, the state a ring starts from, for
// the members that fetch it: the initial or resumed state, or the state a
// surviving member uploads. FetchState handlers wait on it.
type stateStore struct {
	mu     sync.Mutex
	states map[uint32]*wire.State
	ready  map[uint32]chan struct{}
}

func newStateStore() *stateStore {
	return &stateStore{states: map[uint32]*wire.State{}, ready: map[uint32]chan struct{}{}}
}

func (s *stateStore) readyLocked(gen uint32) chan struct{} {
	ch, ok := s.ready[gen]
	if !ok {
		ch = make(chan struct{})
		s.ready[gen] = ch
	}
	return ch
}

// set makes st the starting state of ring gen, once.
func (s *stateStore) set(gen uint32, st *wire.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[gen]; ok {
		return
	}
	s.states[gen] = st
	close(s.readyLocked(gen))
	// Older rings' states are of no further use.
	for g := range s.states {
		if g+1 < gen {
			delete(s.states, g)
			delete(s.ready, g)
		}
	}
}

// errNoState is returned when the job ends before a ring's state exists.
var errNoState = errors.New("the job ended before the state was available")

// wait returns the starting state of ring gen once it exists.
func (s *stateStore) wait(ctx context.Context, gen uint32, done <-chan struct{}) (*wire.State, error) {
	s.mu.Lock()
	ch := s.readyLocked(gen)
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-done:
		return nil, errNoState
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[gen], nil
}

// peek returns the starting state of ring gen if it exists already.
func (s *stateStore) peek(gen uint32) (*wire.State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[gen]
	return st, ok
}
