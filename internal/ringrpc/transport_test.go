package ringrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/allreduce/allreducetest"
	"ringtrain/internal/grpcopts"
	"ringtrain/internal/testmain"
	pb "ringtrain/proto"
)

func TestMain(m *testing.M) { testmain.Run(m) }

// startServers starts n gRPC servers on loopback, each serving a Service,
// and stops them when the test ends.
func startServers(t testing.TB, n int) ([]*Service, []string) {
	t.Helper()
	svcs := make([]*Service, n)
	addrs := make([]string, n)
	for i := range svcs {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer(grpcopts.ServerOptions()...)
		svcs[i] = NewService(5 * time.Second)
		pb.RegisterRingServer(srv, svcs[i])
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		addrs[i] = lis.Addr().String()
	}
	return svcs, addrs
}

// connectRing connects n ranks and returns their transports.
func connectRing(t testing.TB, n int, job string) []allreduce.Transport {
	t.Helper()
	svcs, addrs := startServers(t, n)
	ts := make([]allreduce.Transport, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := Connect(ctx, svcs[r], Config{JobID: job, Generation: 1, Rank: r, Addrs: addrs, DialOptions: grpcopts.DialOptions()})
			ts[r], errs[r] = tr, err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return ts
}

func TestGRPCTransportConformance(t *testing.T) {
	allreducetest.Run(t, func(t *testing.T, n int) []allreduce.Transport { return connectRing(t, n, "conformance") })
}

// TestConnectTimesOutNamingMissingNeighbour connects rank 0 of a ring whose
// rank 1 never shows up.
func TestConnectTimesOutNamingMissingNeighbour(t *testing.T) {
	svcs, addrs := startServers(t, 1)
	lis, err := net.Listen("tcp", "127.0.0.1:0") // a port where nobody serves Ring
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	addrs = append(addrs, lis.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Connect(ctx, svcs[0], Config{JobID: "j", Generation: 1, Rank: 0, Addrs: addrs, DialOptions: grpcopts.DialOptions()})
	if err == nil || !strings.Contains(err.Error(), "rank 1 ("+addrs[1]+")") {
		t.Fatalf("got %v, want an error naming rank 1 and its address", err)
	}
}

// TestPassRefusesStrangers opens Pass streams that do not belong to any
// ring here, or come from the wrong rank.
func TestPassRefusesStrangers(t *testing.T) {
	svcs, addrs := startServers(t, 1)
	svcs[0].claimTimeout = 200 * time.Millisecond
	conn, err := grpc.NewClient(addrs[0], grpcopts.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pass := func(h *pb.Hello) error {
		s, err := pb.NewRingClient(conn).Pass(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.RingFrame{Hello: h}); err != nil {
			return err
		}
		_, err = s.CloseAndRecv()
		return err
	}
	if err := pass(nil); err == nil || !strings.Contains(err.Error(), "must be a hello") {
		t.Fatalf("stream without hello: %v", err)
	}
	if err := pass(&pb.Hello{JobId: "nobody", Generation: 3}); err == nil || !strings.Contains(err.Error(), "no ring 3 of job nobody") {
		t.Fatalf("stream for an unknown ring: %v", err)
	}
	// A job id of 4 MiB is quoted by its first bytes only.
	if err := pass(&pb.Hello{JobId: strings.Repeat("x", 4<<20), Generation: 3}); err == nil || len(err.Error()) > 512 || !strings.Contains(err.Error(), "(4194304 bytes)") {
		t.Fatalf("stream for an unknown ring with a 4 MiB job id: %d bytes of error", len(fmt.Sprint(err)))
	}
	// A ring of two whose rank 1 expects rank 0: a stream claiming rank 5.
	go func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second) // ends when the stream comes
		defer ccancel()
		svcs[0].claim(cctx, slotKey{"j", 1}, 0)
	}()
	if err := pass(&pb.Hello{JobId: "j", Generation: 1, FromRank: 5}); err == nil || !strings.Contains(err.Error(), "rank 5 connected, but the left-hand neighbour is rank 0") {
		t.Fatalf("stream from the wrong rank: %v", err)
	}
}

// TestCorruptFrameRefused sends rank 1 a frame whose data does not match
// its CRC-32C, as a network that flips bits would: Recv refuses it.
func TestCorruptFrameRefused(t *testing.T) {
	svcs, addrs := startServers(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go svcs[0].claim(ctx, slotKey{"j", 1}, 1) // rank 0's side of the ring, unused
	conn, err := grpc.NewClient(addrs[1], grpcopts.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pass, err := pb.NewRingClient(conn).Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pass.Send(&pb.RingFrame{Hello: &pb.Hello{JobId: "j", Generation: 1, FromRank: 0}}); err != nil {
		t.Fatal(err)
	}
	tr, err := Connect(ctx, svcs[1], Config{JobID: "j", Generation: 1, Rank: 1, Addrs: addrs, DialOptions: grpcopts.DialOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	data := make([]byte, 64)
	good := checksum([][]byte{data})
	data[10] ^= 4 // flipped on the way
	if err := pass.Send(&pb.RingFrame{Step: 1, Length: 8, Data: data, Crc32C: good}); err != nil {
		t.Fatal(err)
	}
	var f allreduce.Frame
	err = tr.Recv(ctx, &f)
	if err == nil || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("Recv of a corrupted frame: %v", err)
	}
}

// TestNeighbourLeavingIsNamed breaks rank 1's transport on a deadline while
// rank 0 keeps sending to it: rank 0's Send fails with ErrNeighbourGone and
// the reason rank 1 gave, not with a bare stream error.
func TestNeighbourLeavingIsNamed(t *testing.T) {
	ts := connectRing(t, 2, "leaving")
	defer ts[0].Close()
	defer ts[1].Close()
	expired, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var f allreduce.Frame
	if err := ts[1].Recv(expired, &f); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("rank 1's Recv: %v, want its deadline", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	data := make([]byte, 64<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ { // the first sends may still be buffered
		err = ts[0].Send(ctx, &allreduce.Frame{Step: 1, Seq: uint32(i), Length: 8192, Data: [][]byte{data}})
	}
	if !errors.Is(err, ErrNeighbourGone) || !strings.Contains(err.Error(), "rank 1 left the ring") {
		t.Fatalf("rank 0's Send after rank 1 left: %v, want ErrNeighbourGone naming rank 1", err)
	}
}

// TestSendCutShortByReceiveReportsTheBreak: rank 0's Send is blocked (rank
// 1 does not read) when its left-hand neighbour, rank 2, leaves; the
// receive that sees it breaks the transport and cancels the outbound
// stream. The Send must then report the break and its cause, not the
// cancelled stream as a fault of rank 1.
func TestSendCutShortByReceiveReportsTheBreak(t *testing.T) {
	ts := connectRing(t, 3, "echo")
	for _, tr := range ts {
		defer tr.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sendErr := make(chan error, 1)
	go func() {
		data := make([]byte, 64<<10)
		var err error
		for i := 0; err == nil; i++ { // until flow control blocks a send
			err = ts[0].Send(ctx, &allreduce.Frame{Step: 1, Seq: uint32(i), Length: 8192, Data: [][]byte{data}})
		}
		sendErr <- err
	}()
	time.Sleep(300 * time.Millisecond) // the sender fills the window and blocks
	ts[2].Close()
	var f allreduce.Frame
	if err := ts[0].Recv(ctx, &f); !errors.Is(err, ErrNeighbourGone) {
		t.Fatalf("rank 0's Recv after rank 2 left: %v, want ErrNeighbourGone", err)
	}
	err := <-sendErr
	if !errors.Is(err, allreduce.ErrBroken) || !errors.Is(err, ErrNeighbourGone) {
		t.Fatalf("rank 0's blocked Send: %v, want the broken transport and its cause", err)
	}
}
