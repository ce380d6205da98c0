package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"ringtrain/internal/allreduce"
	"ringtrain/internal/grpcopts"
	"ringtrain/internal/ringrpc"
	"ringtrain/internal/ringtcp"
	pb "ringtrain/proto"
)

// sweepResult is one size of an all-reduce sweep, as rank 0 prints it.
type sweepResult struct {
	Bytes   int       `json:"bytes"`
	Seconds float64   `json:"seconds"` // median over repeats
	Samples []float64 `json:"samples"` // seconds per collective, per repeat
}

// iterations is how many collectives of size bytes one timed repeat runs:
// enough to amortise timer overhead, at most about 256 MiB of traffic. The
// PyTorch peer script uses the same rule.
func iterations(size, max int) int {
	return min(max, (256<<20)/size)
}

// RankMain is one process of an all-reduce sweep (ringbench
// allreduce-rank): it serves the Ring service, prints "ADDR host:port",
// reads "ADDRS a,b,..." (every rank's address), forms the ring and times
// collectives of every size. Rank 0 prints one JSON sweepResult per size.
func RankMain(args []string) error {
	fs := flag.NewFlagSet("allreduce-rank", flag.ContinueOnError)
	rank := fs.Int("rank", 0, "this process's rank")
	sizesFlag := fs.String("sizes", "1024", "comma-separated vector sizes in bytes")
	iters := fs.Int("iters", 20, "collectives per timed repeat (fewer for large sizes)")
	repeats := fs.Int("repeats", 5, "timed repeats per size")
	segment := fs.Int("segment-bytes", 0, "all-reduce frame size (0: default)")
	transport := fs.String("transport", "tcp", "the ring's data plane: tcp (package ringtcp), shm (package ringtcp, frames through shared memory, as between workers on one host) or grpc (package ringrpc)")
	kind := fs.String("kind", "float64", "what travels: float64, float32, or float32 values compressed to fp16 or bf16 (with error feedback); a vector of SIZE bytes holds SIZE/8 values whatever the kind")
	profile := fs.String("cpuprofile", "", "write a CPU profile of this rank to the file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var sizes []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 8 {
			return fmt.Errorf("bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tcpSvc, grpcLis := ringtcp.Listen(lis, ringtcp.ServiceConfig{})
	defer tcpSvc.Close()
	srv := grpc.NewServer(grpcopts.ServerOptions()...)
	svc := ringrpc.NewService(time.Minute)
	pb.RegisterRingServer(srv, svc)
	go srv.Serve(grpcLis)
	defer srv.Stop()
	fmt.Printf("ADDR %s\n", lis.Addr())
	stdin := bufio.NewReader(os.Stdin)
	line, err := stdin.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read addresses: %w", err)
	}
	addrs := strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "ADDRS ")), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var t allreduce.Transport
	switch *transport {
	case "tcp", "shm":
		t, err = ringtcp.Connect(ctx, tcpSvc, ringtcp.Config{JobID: "bench", Generation: 1, Rank: *rank, Addrs: addrs, SharedMemory: *transport == "shm"})
	case "grpc":
		t, err = ringrpc.Connect(ctx, svc, ringrpc.Config{JobID: "bench", Generation: 1, Rank: *rank, Addrs: addrs, DialOptions: grpcopts.DialOptions()})
	default:
		err = fmt.Errorf("unknown transport %q (tcp, shm or grpc)", *transport)
	}
	cancel()
	if err != nil {
		return err
	}
	defer t.Close()
	ring := allreduce.New(t, allreduce.Config{SegmentBytes: *segment})
	var collective uint64
	var v32, residual []float32
	run := func(v []float64) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		collective++
		if *kind != "float64" && len(v32) != len(v) {
			// Ones, as v holds: their average stays one.
			v32, residual = make([]float32, len(v)), make([]float32, len(v))
			for i := range v32 {
				v32[i] = 1
			}
		}
		switch *kind {
		case "float64":
			return ring.AllReduce(ctx, collective, v, allreduce.Average)
		case "float32":
			return ring.AllReduceFloat32(ctx, collective, v32, allreduce.Average)
		case "fp16", "bf16":
			k := map[string]allreduce.Kind{"fp16": allreduce.Float16, "bf16": allreduce.BFloat16}[*kind]
			return ring.AllReduce16(ctx, collective, v32, allreduce.Average, allreduce.Compression{Kind: k, Residual: residual})
		}
		return fmt.Errorf("unknown kind %q (float64, float32, fp16 or bf16)", *kind)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, size := range sizes {
		v := make([]float64, size/8)
		for i := range v {
			v[i] = 1
		}
		for i := 0; i < 3; i++ { // warm-up
			if err := run(v); err != nil {
				return err
			}
		}
		k := iterations(size, *iters)
		res := sweepResult{Bytes: size}
		for r := 0; r < *repeats; r++ {
			start := time.Now()
			for i := 0; i < k; i++ {
				if err := run(v); err != nil {
					return err
				}
			}
			res.Samples = append(res.Samples, time.Since(start).Seconds()/float64(k))
		}
		res.Seconds = median(res.Samples)
		if *rank == 0 {
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
	}
	// Frames still in flight would be lost if this rank closed its ring
	// now: report done and wait for the parent, which waits for every rank.
	fmt.Println("DONE")
	io.Copy(io.Discard, stdin)
	return nil
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TCPSinkMain is the receiving process of the loopback TCP ceiling
// (ringbench tcp-sink): it prints "ADDR host:port", accepts one connection,
// reads it to the end and prints the byte count.
func TCPSinkMain(args []string) error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer lis.Close()
	fmt.Printf("ADDR %s\n", lis.Addr())
	conn, err := lis.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	n, err := io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	fmt.Printf("%d\n", n)
	return nil
}
