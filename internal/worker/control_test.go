package worker

import (
	"context"
	"errors"
	"testing"

	pb "ringtrain/proto"
)

// TestEarlyPauseAndAbortReachTheirRing: a Pause or an Abort read before
// the Assignment of its ring has started (the reader acts at once, the
// Assignment waits in a queue) applies when that ring starts; one for a
// ring that has ended, or for an older ring than one already kept, does
// not.
func TestEarlyPauseAndAbortReachTheirRing(t *testing.T) {
	bg := context.Background()
	var rc ringControl

	rc.requestPause(&pb.Pause{Generation: 1, Checkpoint: true})
	ctx := rc.start(bg, 1)
	if !rc.pause.Load() || !rc.checkpoint.Load() || ctx.Err() != nil {
		t.Fatalf("ring 1 started without the pause that came before it (pause %v, checkpoint %v, err %v)", rc.pause.Load(), rc.checkpoint.Load(), ctx.Err())
	}
	rc.end()

	stop := errors.New("aborted before it started")
	rc.abort(2, stop)
	rc.requestPause(&pb.Pause{Generation: 1}) // ended: nothing to keep
	ctx = rc.start(bg, 2)
	if !errors.Is(context.Cause(ctx), stop) {
		t.Fatalf("ring 2 started with cause %v, want the abort that came before it", context.Cause(ctx))
	}
	if rc.pause.Load() || rc.checkpoint.Load() {
		t.Fatal("ring 2 inherited ring 1's pause")
	}
	rc.end()

	// Kept for ring 4, then a stale one for ring 3: ring 3 starts clean
	// and ring 4 still gets its pause.
	rc.requestPause(&pb.Pause{Generation: 4})
	rc.requestPause(&pb.Pause{Generation: 3})
	rc.start(bg, 3)
	if rc.pause.Load() {
		t.Fatal("ring 3 took the pause meant for ring 4 (or an older one's)")
	}
	rc.end()
	rc.start(bg, 4)
	if !rc.pause.Load() {
		t.Fatal("ring 4 lost its early pause when ring 3 started")
	}
	rc.end()

	// A pause for the running ring still acts at once.
	rc.start(bg, 5)
	rc.requestPause(&pb.Pause{Generation: 5})
	if !rc.pause.Load() {
		t.Fatal("a pause for the running ring did not act")
	}
	rc.end()
}
