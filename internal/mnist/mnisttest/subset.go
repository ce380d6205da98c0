// Package mnisttest writes small MNIST data sets for tests: the first
// images of the real training and test sets, as uncompressed IDX files a
// coordinator loads with -data (Config.DataDir). A test that trains for a
// few seconds needs a few thousand images, not seventy thousand.
package mnisttest

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"ringtrain/internal/mnist"
)

// source is the folder of the real data set's gzip files, found and
// verified (mnist.DefaultDir checks their SHA-256) once.
var source = sync.OnceValues(mnist.DefaultDir)

// WriteSubset writes the first train training images and the first test
// test images of MNIST, with their labels, into dir under the original
// file names (uncompressed). It decompresses only the part of each real
// file it copies: decompressing whole files takes seconds in a test
// binary built with -race.
func WriteSubset(dir string, train, test int) error {
	src, err := source()
	if err != nil {
		return err
	}
	for _, part := range []struct {
		prefix string
		n      int
	}{{"train", train}, {"t10k", test}} {
		for _, f := range []struct {
			name  string
			magic uint32
			dims  int
		}{{"-images-idx3-ubyte", 0x803, 3}, {"-labels-idx1-ubyte", 0x801, 1}} {
			name := part.prefix + f.name
			if err := copyPrefix(filepath.Join(dir, name), filepath.Join(src, name+".gz"), f.magic, f.dims, part.n); err != nil {
				return fmt.Errorf("mnisttest: %s: %w", name, err)
			}
		}
	}
	return nil
}

// copyPrefix writes to dst the IDX file of the first n items of the
// gzipped IDX file src: its header with the count n, then the items'
// bytes.
func copyPrefix(dst, src string, magic uint32, dims, n int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	hdr := make([]uint32, 1+dims)
	if err := binary.Read(zr, binary.BigEndian, hdr); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if hdr[0] != magic {
		return fmt.Errorf("magic number %#x, want %#x", hdr[0], magic)
	}
	if n < 1 || n > int(hdr[1]) {
		return fmt.Errorf("%d items asked for, the set has %d", n, hdr[1])
	}
	size := 1
	for _, d := range hdr[2:] {
		size *= int(d)
	}
	hdr[1] = uint32(n)
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := binary.Write(out, binary.BigEndian, hdr); err != nil {
		out.Close()
		return err
	}
	if _, err := io.CopyN(out, zr, int64(n*size)); err != nil {
		out.Close()
		return fmt.Errorf("copying %d items: %w", n, err)
	}
	return out.Close()
}
