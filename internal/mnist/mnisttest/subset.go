// Package mnisttest writes small MNIST data sets for tests: the first
// images of the real training and test sets, as uncompressed IDX files a
// coordinator loads with -data (Config.DataDir). A test that trains for a
// few seconds needs a few thousand images, not seventy thousand.
package mnisttest

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"ringtrain/internal/mnist"
)

// full is the real data set, loaded once.
var full = sync.OnceValues(func() ([2]*mnist.Set, error) {
	var sets [2]*mnist.Set
	dir, err := mnist.DefaultDir()
	if err != nil {
		return sets, err
	}
	for i, split := range []mnist.Split{mnist.Train, mnist.Test} {
		if sets[i], err = mnist.Load(dir, split); err != nil {
			return sets, err
		}
	}
	return sets, nil
})

// WriteSubset writes the first train training images and the first test
// test images of MNIST, with their labels, into dir under the original
// file names (uncompressed).
func WriteSubset(dir string, train, test int) error {
	sets, err := full()
	if err != nil {
		return err
	}
	for i, part := range []struct {
		prefix string
		n      int
	}{{"train", train}, {"t10k", test}} {
		set := sets[i]
		if part.n < 1 || part.n > set.Count {
			return fmt.Errorf("mnisttest: %d %s images asked for, the set has %d", part.n, part.prefix, set.Count)
		}
		pixels := set.Pixels[:part.n*set.Rows*set.Cols]
		if err := writeIDX(filepath.Join(dir, part.prefix+"-images-idx3-ubyte"), 0x803, []int{part.n, set.Rows, set.Cols}, pixels); err != nil {
			return err
		}
		if err := writeIDX(filepath.Join(dir, part.prefix+"-labels-idx1-ubyte"), 0x801, []int{part.n}, set.Labels[:part.n]); err != nil {
			return err
		}
	}
	return nil
}

// writeIDX writes an IDX file: its magic number, its dimensions, its bytes.
func writeIDX(path string, magic uint32, dims []int, body []byte) error {
	hdr := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	return os.WriteFile(path, append(hdr, body...), 0o644)
}
