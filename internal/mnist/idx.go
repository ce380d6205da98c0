package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic numbers of the two IDX variants MNIST uses: unsigned bytes with three
// dimensions (images) and with one dimension (labels).
const (
	imageMagic = 2051
	labelMagic = 2049
)

// Limits that keep a hostile header from making the parser allocate without
// bound. They are far above MNIST's (60,000 images of 28×28) and EMNIST's.
const (
	maxItems     = 1 << 24
	maxImageSide = 1 << 12
)

// Images is the content of an IDX3 image file: Count images of Rows×Cols
// unsigned bytes each, stored row-major one image after the other.
type Images struct {
	Count, Rows, Cols int
	Pixels            []byte
}

// ReadImages parses an IDX3 image file, gzip-compressed or not. It checks the
// magic number, the dimensions and that exactly the promised number of pixel
// bytes follows the header.
func ReadImages(r io.Reader) (*Images, error) {
	br, err := decompressed(r)
	if err != nil {
		return nil, err
	}
	hdr, err := readHeader(br, imageMagic, 3)
	if err != nil {
		return nil, err
	}
	count, rows, cols := hdr[0], hdr[1], hdr[2]
	if count > maxItems {
		return nil, fmt.Errorf("image count %d exceeds the limit of %d", count, maxItems)
	}
	if rows == 0 || cols == 0 || rows > maxImageSide || cols > maxImageSide {
		return nil, fmt.Errorf("image dimensions %d×%d are out of range (1 to %d)", rows, cols, maxImageSide)
	}
	n := int(count) * int(rows) * int(cols)
	pixels, err := readBody(br, n, fmt.Sprintf("%d images of %d×%d", count, rows, cols))
	if err != nil {
		return nil, err
	}
	return &Images{Count: int(count), Rows: int(rows), Cols: int(cols), Pixels: pixels}, nil
}

// ReadLabels parses an IDX1 label file, gzip-compressed or not, and checks
// that every label is a digit 0–9.
func ReadLabels(r io.Reader) ([]uint8, error) {
	br, err := decompressed(r)
	if err != nil {
		return nil, err
	}
	hdr, err := readHeader(br, labelMagic, 1)
	if err != nil {
		return nil, err
	}
	count := hdr[0]
	if count > maxItems {
		return nil, fmt.Errorf("label count %d exceeds the limit of %d", count, maxItems)
	}
	labels, err := readBody(br, int(count), fmt.Sprintf("%d labels", count))
	if err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l > 9 {
			return nil, fmt.Errorf("label %d is %d, not a digit 0-9", i, l)
		}
	}
	return labels, nil
}

// decompressed returns a reader of the IDX bytes, unwrapping gzip when the
// stream starts with the gzip magic bytes.
func decompressed(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		zr.Multistream(false)
		return bufio.NewReaderSize(gzipErrors{zr}, 1<<16), nil
	}
	return br, nil
}

// gzipErrors marks the errors of a gzip stream as such: a corrupt file
// says "gzip: invalid checksum" or "gzip: flate: corrupt input", not what
// the parser made of the bytes it got.
type gzipErrors struct{ r io.Reader }

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}

// maxDrain bounds what readBody reads past the promised data to find out
// whether a corrupt gzip stream, rather than the file, is to blame.
const maxDrain = 1 << 26

// readHeader reads and checks the big-endian magic number, then reads dims
// big-endian 32-bit dimensions.
func readHeader(r io.Reader, magic uint32, dims int) ([]uint32, error) {
	hdr := make([]uint32, 1+dims)
	for i := range hdr {
		if err := binary.Read(r, binary.BigEndian, &hdr[i]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("truncated header: want %d bytes", 4*(1+dims))
			}
			return nil, fmt.Errorf("header: %w", err)
		}
		if i == 0 && hdr[0] != magic {
			return nil, fmt.Errorf("bad magic number %d, want %d (%s)", hdr[0], magic, magicName(magic))
		}
	}
	return hdr[1:], nil
}

func magicName(magic uint32) string {
	if magic == imageMagic {
		return "an IDX3 image file"
	}
	return "an IDX1 label file"
}

// readBody reads exactly n bytes and then requires the end of the stream, so
// that neither a truncated nor an overlong file passes.
func readBody(r io.Reader, n int, what string) ([]byte, error) {
	// Trust the header up to 64 MiB, then grow with the data actually
	// present. The extra MinRead keeps ReadFrom from doubling a buffer
	// that is exactly full before it sees the end.
	buf := bytes.NewBuffer(make([]byte, 0, min(n, 1<<26)+bytes.MinRead))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated: header promises %s (%d bytes) but the data ends after %d bytes", what, n, got)
		}
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int(got) < n {
		return nil, fmt.Errorf("truncated: header promises %s (%d bytes) but only %d bytes follow", what, n, got)
	}
	var extra [1]byte
	switch k, err := r.Read(extra[:]); {
	case k > 0:
		// A corrupt gzip stream can inflate to more bytes than its header
		// promised: its checksum, at the end, says so.
		if _, err := io.Copy(io.Discard, io.LimitReader(r, maxDrain)); err != nil {
			return nil, fmt.Errorf("after %s: %w", what, err)
		}
		return nil, fmt.Errorf("unexpected data after %s (%d bytes)", what, n)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("after %s: %w", what, err)
	}
	return buf.Bytes(), nil
}
