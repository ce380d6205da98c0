package ringtcp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"ringtrain/internal/allreduce"
)

// needShm skips a test of shared memory where it is not implemented.
func needShm(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("shared memory between neighbours is implemented on Linux only")
	}
}

// TestSharedMemoryPositionsChecked: a write position beyond what the ring
// can hold fails the receive as a corrupted frame naming the neighbour,
// and a read position the writer cannot have reached fails the write.
func TestSharedMemoryPositionsChecked(t *testing.T) {
	needShm(t)
	tr, out := fakeLeft(t, 0, true)
	rc := out.(*ringConn)
	ring := rc.ring
	ring.wpos.Store(uint64(len(ring.data)) + 1)
	if _, err := rc.conn.Write([]byte{doorbell}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var f allreduce.Frame
	err := tr.Recv(ctx, &f)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "rank 0 (127.0.0.1:") {
		t.Fatalf("a write position past the ring: %v, want a corruption naming rank 0", err)
	}

	w, err := createShmRing(64<<10, newNonce(), shmOwner{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.unmap()
	sw := &shmWriter{ring: w}
	w.rpos.Store(12345) // past the write position, 0
	if _, err := sw.Write(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a read position past the write position: %v, want a corruption", err)
	}
	w.rpos.Store(50)
	sw = &shmWriter{ring: w, w: 200, lastR: 100}
	if _, err := sw.Write(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a read position that went back: %v, want a corruption", err)
	}
}

// TestSharedMemoryOfferChecked: a receiver maps only a ring's file, of the
// size offered, holding the nonce named on the connection; anything else
// is declined (and a neighbour cannot make it open another file).
func TestSharedMemoryOfferChecked(t *testing.T) {
	needShm(t)
	nonce := newNonce()
	left := shmOwner{rank: 2, generation: 7}
	r, err := createShmRing(64<<10, nonce, left)
	if err != nil {
		t.Fatal(err)
	}
	defer r.unmap()
	name := shmName(r.path)
	wrong := nonce
	wrong[0] ^= 1
	for _, tt := range []struct {
		what     string
		name     string
		capacity int
		nonce    [shmNonceLen]byte
		owner    shmOwner
	}{
		{"another file", "../../etc/passwd", 64 << 10, nonce, left},
		{"a name with a path", name + "/../" + name, 64 << 10, nonce, left},
		{"not a ring's name", "ringtrain-ring-x1-2", 64 << 10, nonce, left},
		{"no random part", shmFilePrefix + "1", 64 << 10, nonce, left},
		{"no such ring", shmFilePrefix + "1-2", 64 << 10, nonce, left},
		{"another size", name, 128 << 10, nonce, left},
		{"not a power of two", name, 65 << 10, nonce, left},
		{"another nonce", name, 64 << 10, wrong, left},
		{"another rank's", name, 64 << 10, nonce, shmOwner{rank: 3, generation: 7}},
		{"another ring's", name, 64 << 10, nonce, shmOwner{rank: 2, generation: 8}},
	} {
		if got, err := openShmRing(tt.name, tt.capacity, tt.nonce, tt.owner); err == nil {
			got.unmap()
			t.Errorf("%s (%q, %d bytes): mapped", tt.what, tt.name, tt.capacity)
		} else {
			t.Logf("%s: %v", tt.what, err)
		}
	}
	got, err := openShmRing(name, 64<<10, nonce, left)
	if err != nil {
		t.Fatalf("the ring itself: %v", err)
	}
	got.unmap()
	if _, err := os.Stat(r.path); !os.IsNotExist(err) {
		t.Errorf("the ring's file is still there once mapped: %v", err)
	}
}

// TestMixedSharedMemoryRing: in a ring of three where rank 1 keeps to TCP,
// the directions that touch it stay on TCP, the other takes shared memory,
// and the sums are right; no ring's file is left behind.
func TestMixedSharedMemoryRing(t *testing.T) {
	needShm(t)
	old := shmDir
	shmDir = t.TempDir()
	defer func() { shmDir = old }()
	const n = 3
	svcs, addrs := startServices(t, n, ServiceConfig{})
	ts := make([]*Transport, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			ts[r], errs[r] = Connect(ctx, svcs[r], Config{JobID: "mixed", Generation: 1, Rank: r, Addrs: addrs,
				SharedMemory: r != 1, SharedMemoryBytes: 64 << 10})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		defer ts[r].Close()
	}
	for r, want := range [n][2]bool{{false, true}, {false, false}, {true, false}} {
		if to, from := ts[r].SharedMemory(); to != want[0] || from != want[1] {
			t.Errorf("rank %d: shared memory to the right %v, from the left %v; want %v, %v", r, to, from, want[0], want[1])
		}
	}
	// Each direction on TCP says why.
	for r, want := range [n][2]string{{"rank 1 (127.0.0.1:", ""}, {"off here", "off here"}, {"", "rank 1 (127.0.0.1:"}} {
		to, from := ts[r].WhyNotSharedMemory()
		for i, got := range []string{to, from} {
			if (want[i] == "") != (got == "") || !strings.Contains(got, want[i]) {
				t.Errorf("rank %d, direction %d: why not shared memory %q, want it to say %q", r, i, got, want[i])
			}
		}
	}
	if left, _ := os.ReadDir(shmDir); len(left) > 0 {
		t.Errorf("files left in the rings' directory once connected: %v", left)
	}
	vs := make([][]float64, n)
	want := make([]float64, 30_001)
	for r := range vs {
		rng := rand.New(rand.NewPCG(uint64(r), 1))
		vs[r] = make([]float64, len(want))
		for i := range vs[r] {
			vs[r][i] = float64(rng.IntN(1000))
			want[i] += vs[r][i]
		}
	}
	for r := range n {
		wg.Go(func() {
			errs[r] = allreduce.New(ts[r], allreduce.DefaultConfig()).AllReduce(ctx, 1, vs[r], allreduce.Sum)
		})
	}
	wg.Wait()
	for r := range n {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		for i := range want {
			if vs[r][i] != want[i] {
				t.Fatalf("rank %d value %d: %v, want %v", r, i, vs[r][i], want[i])
			}
		}
	}
}

// TestOrphanedRingFilesRemoved: creating a ring removes the files of
// processes that no longer run, and only those.
func TestOrphanedRingFilesRemoved(t *testing.T) {
	needShm(t)
	old := shmDir
	shmDir = t.TempDir()
	defer func() { shmDir = old }()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(shmDir, fmt.Sprintf("%s%d-1", shmFilePrefix, dead.Process.Pid))
	live := filepath.Join(shmDir, fmt.Sprintf("%s%d-1", shmFilePrefix, os.Getpid()))
	other := filepath.Join(shmDir, "unrelated")
	for _, p := range []string{orphan, live, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := createShmRing(64<<10, newNonce(), shmOwner{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.unmap()
	if pid, ok := ringFilePID(filepath.Base(r.path)); !ok || pid != os.Getpid() {
		t.Errorf("the ring's file %s does not name this process", r.path)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the dead process's file is still there (%v)", err)
	}
	for _, p := range []string{live, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
