// Package ringtcp carries the ring all-reduce's frames on a dedicated TCP
// connection per neighbour: each rank dials its right-hand neighbour and
// accepts its left-hand one's connection. A frame is a 48-byte header and
// the segment's bytes, read into one reusable buffer, or straight into the
// vector where the collective offers it (RecvInto: the all-gather's
// frames), with no framing layer copying it in 16 KiB pieces as gRPC's
// does. A writer goroutine
// writes them: a frame over 64 KiB with one writev straight from the
// vector being reduced while Send waits, a smaller one from a copy while
// Send returns (on loopback a write also does the receiver's work). With
// the job's credentials the connection is mutual TLS 1.3, as the gRPC
// services are.
//
// The connections share the port of the worker's gRPC services: Listen
// splits a listener by the preamble a connection opens with, so the ring's
// addresses stay what the coordinator hands out and gRPC keeps control and
// health.
//
// Between neighbours on one host (Config.SharedMemory) the frames go
// through a ring buffer in shared memory instead, the connection carrying
// only wake-ups and each side's end: the sender offers a file of /dev/shm
// holding a random nonce, and a receiver that finds the nonce there is on
// the same host (see shm.go). The frames are byte for byte the same.
//
// Every frame carries a running number and CRC-32C checksums of its header
// and payload, and is bounded in size: a corrupted, truncated, oversized
// or out-of-order frame is an error naming the neighbour it came from,
// never a wrong sum.
package ringtcp

import "errors"

// The kinds of bad frame, wrapped by the errors that report them.
var (
	ErrCorrupt    = errors.New("corrupted frame")
	ErrTruncated  = errors.New("truncated frame")
	ErrOversized  = errors.New("oversized frame")
	ErrOutOfOrder = errors.New("frame out of order")
)

// ErrNeighbourGone is the error of a call whose neighbour closed its
// connection: it left the ring after a failure of its own, or died.
var ErrNeighbourGone = errors.New("the neighbour closed its connection (it left the ring or died)")

// preamble opens every ring connection, before TLS: its digit is the
// protocol's version (2: shared-memory offers follow the hello).
const preamble = "RINGTCP2"

// oldPreamble opened the connections of protocol 1, which a worker of
// this version refuses saying why.
const oldPreamble = "RINGTCP1"
