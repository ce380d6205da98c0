package ringtcp

import (
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestCRC32CMatchesHashCRC32 checks crc32cUpdate against hash/crc32's
// Castagnoli checksum for every length up to 2 KiB and some long ones, at
// several alignments, from zero and non-zero starting checksums, on the
// best path this CPU has (crc32c_amd64_test.go checks the others).
func TestCRC32CMatchesHashCRC32(t *testing.T) { checkCRC32C(t) }

func checkCRC32C(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20+64)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lengths := []int{1 << 20, 1<<20 - 1, 256<<10 + 48, 65536 + 13}
	for n := 0; n <= 2048; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 7, 8, 15} {
			p := buf[off : off+n]
			for _, start := range []uint32{0, 0xdeadbeef} {
				if got, want := crc32cUpdate(start, p), crc32.Update(start, castagnoli, p); got != want {
					t.Fatalf("length %d at offset %d from %#x: %#x, hash/crc32 says %#x", n, off, start, got, want)
				}
			}
		}
	}
}

// TestCRC32CConstants derives the folding constants from the Castagnoli
// polynomial, the way Intel's paper does, and checks them against those in
// crc32c_amd64.s (the derivation reproduces hash/crc32's IEEE constants;
// the fold by 2048 bits is checked by TestCRC32CMatchesHashCRC32).
func TestCRC32CConstants(t *testing.T) {
	ieee := foldConstants(0x04c11db7)
	if want := [7]uint64{0x154442bd4, 0x1c6e41596, 0x1751997d0, 0xccaa009e, 0x163cd6124, 0x1db710641, 0x1f7011641}; [7]uint64(ieee[2:]) != want {
		t.Fatalf("the derivation gives IEEE constants %#x, hash/crc32 has %#x", ieee, want)
	}
	got := foldConstants(0x1edc6f41)
	if want := [9]uint64{0xdcb17aa4, 0xb9e02b86, 0x740eef02, 0x9e4addf8, 0xf20c0dfe, 0x14cd00bd6, 0xdd45aab8, 0x105ec76f1, 0xdea713f1}; got != want {
		t.Fatalf("Castagnoli constants %#x, crc32c_amd64.s has %#x", got, want)
	}
}

// foldConstants returns r7, r8, r1–r5, P and µ for the polynomial p
// (normal form, x^32 implied): rk is x^n mod P for n = 16·128+32,
// 16·128−32, 4·128+32, 4·128−32, 128+32, 128−32 and 64, reflected and
// shifted left by one; P and µ = x^64 div P are reflected over 33 bits.
func foldConstants(p uint32) [9]uint64 {
	xmod := func(n int) uint64 {
		r := uint32(1)
		for range n {
			top := r >> 31
			r <<= 1
			if top != 0 {
				r ^= p
			}
		}
		return uint64(bits.Reverse32(r)) << 1
	}
	poly := uint64(1)<<32 | uint64(p)
	var q, rem uint64
	for i := 64; i >= 0; i-- {
		rem <<= 1
		if i == 64 {
			rem |= 1
		}
		q <<= 1
		if rem&(1<<32) != 0 {
			rem ^= poly
			q |= 1
		}
	}
	reflect33 := func(x uint64) uint64 { return bits.Reverse64(x) >> 31 }
	return [9]uint64{xmod(16*128 + 32), xmod(16*128 - 32), xmod(4*128 + 32), xmod(4*128 - 32), xmod(128 + 32), xmod(128 - 32), xmod(64), reflect33(poly), reflect33(q)}
}

// BenchmarkCRC32C checksums a 64 MiB buffer 256 KiB at a time, as a rank
// does the segments it sends: mostly from memory, not from cache.
func BenchmarkCRC32C(b *testing.B) {
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for _, impl := range []struct {
		name string
		f    func(uint32, []byte) uint32
	}{{"ringtcp", crc32cUpdate}, {"hash-crc32", func(c uint32, p []byte) uint32 { return crc32.Update(c, castagnoli, p) }}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				for off := 0; off < len(buf); off += 256 << 10 {
					impl.f(0, buf[off:off+256<<10])
				}
			}
		})
	}
}
