// Package control is the coordinator's ring lifecycle as a pure state
// machine: which workers form the ring, from which step, how a ring ends
// (a worker joins or leaves at a step boundary, a member is lost, a
// collective fails), whom a failure is attributed to, where training rolls
// back to, when the job gives up and when it is complete.
//
// A Machine holds no goroutine, reads no clock, does no I/O and logs
// nothing. Its caller, the coordinator, turns what happens (a worker
// joins, a report arrives, a timer fires) into Events and hands each to
// Handle with the time elapsed since the job started; Handle returns the
// Actions to carry out, in order (assign a ring, pause or abort it, drop
// or release a worker, record a membership change, arm a timer, checkpoint,
// finish the job with a named cause), the way etcd's raft hands its caller
// a Ready. The same events in the same order always give the same actions,
// which is what lets every fault scenario be replayed as a unit test.
package control
