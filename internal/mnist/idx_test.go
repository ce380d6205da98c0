package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxImages builds an IDX3 image file of n images of r×c pixels whose pixel
// values count up from 0.
func idxImages(n, r, c int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{imageMagic, uint32(n), uint32(r), uint32(c)})
	for i := 0; i < n*r*c; i++ {
		b.WriteByte(byte(i))
	}
	return b.Bytes()
}

// idxLabels builds an IDX1 label file holding labels.
func idxLabels(labels ...uint8) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{labelMagic, uint32(len(labels))})
	b.Write(labels)
	return b.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadImagesRawAndGzip(t *testing.T) {
	raw := idxImages(3, 2, 4)
	for name, data := range map[string][]byte{"raw": raw, "gzip": gzipped(t, raw)} {
		t.Run(name, func(t *testing.T) {
			img, err := ReadImages(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if img.Count != 3 || img.Rows != 2 || img.Cols != 4 || len(img.Pixels) != 24 {
				t.Fatalf("got %d images of %d×%d with %d pixels", img.Count, img.Rows, img.Cols, len(img.Pixels))
			}
			if img.Pixels[23] != 23 {
				t.Fatalf("last pixel %d, want 23", img.Pixels[23])
			}
		})
	}
}

func TestReadLabels(t *testing.T) {
	labels, err := ReadLabels(bytes.NewReader(gzipped(t, idxLabels(5, 0, 9))))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(labels, []byte{5, 0, 9}) {
		t.Fatalf("got %v", labels)
	}
}

func TestReadRejectsBadInput(t *testing.T) {
	img := idxImages(3, 2, 4)
	lbl := idxLabels(1, 2, 3)
	badGzip := gzipped(t, img)
	badGzip[len(badGzip)-6] ^= 0xff // corrupt the CRC-32 trailer
	cases := []struct {
		name   string
		labels bool
		data   []byte
		want   string
	}{
		{"empty", false, nil, "truncated header"},
		{"short header", false, img[:10], "truncated header"},
		{"truncated pixels", false, img[:len(img)-1], "truncated: header promises 3 images of 2×4 (24 bytes) but only 23 bytes follow"},
		{"truncated gzip", false, gzipped(t, img)[:30], "truncated"},
		{"corrupt gzip", false, badGzip, "gzip: invalid checksum"},
		{"trailing data", false, append(append([]byte{}, img...), 0), "unexpected data after 3 images"},
		{"label magic for images", false, lbl, "bad magic number 2049, want 2051"},
		{"image magic for labels", true, img, "bad magic number 2051, want 2049"},
		{"zero rows", false, idxImages(1, 0, 4), "dimensions 0×4 are out of range"},
		{"huge count", false, func() []byte {
			b := idxImages(1, 1, 1)
			binary.BigEndian.PutUint32(b[4:], 1<<31)
			return b
		}(), "exceeds the limit"},
		{"truncated labels", true, lbl[:len(lbl)-1], "truncated: header promises 3 labels"},
		{"label out of range", true, idxLabels(1, 10), "label 1 is 10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.labels {
				_, err = ReadLabels(bytes.NewReader(c.data))
			} else {
				_, err = ReadImages(bytes.NewReader(c.data))
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLoadNamesFileAndMismatchedCounts(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train-images-idx3-ubyte", idxImages(3, 2, 2))
	write("train-labels-idx1-ubyte.gz", gzipped(t, idxLabels(1, 2)))
	_, err := Load(dir, Train)
	if err == nil || !strings.Contains(err.Error(), "3 images but 2 labels") || !strings.Contains(err.Error(), "train-labels-idx1-ubyte.gz") {
		t.Fatalf("got %v, want a count mismatch naming the files", err)
	}

	write("t10k-images-idx3-ubyte.gz", gzipped(t, idxImages(2, 2, 2)[:20]))
	write("t10k-labels-idx1-ubyte", idxLabels(1, 2))
	_, err = Load(dir, Test)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "t10k-images-idx3-ubyte.gz")+": truncated") {
		t.Fatalf("got %v, want a truncation error naming the file", err)
	}

	_, err = Load(t.TempDir(), Train)
	if err == nil || !strings.Contains(err.Error(), "neither train-images-idx3-ubyte.gz nor train-images-idx3-ubyte") {
		t.Fatalf("got %v, want a missing-file error", err)
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idxImages(2, 3, 3))
	f.Add(idxLabels(0, 9, 4))
	f.Add(gzipped(f, idxImages(1, 2, 2)))
	f.Add(gzipped(f, idxLabels(7)))
	f.Add(idxImages(2, 3, 3)[:17])
	f.Fuzz(func(t *testing.T, data []byte) {
		if img, err := ReadImages(bytes.NewReader(data)); err == nil {
			if img.Count*img.Rows*img.Cols != len(img.Pixels) {
				t.Fatalf("%d×%d×%d images but %d pixels", img.Count, img.Rows, img.Cols, len(img.Pixels))
			}
		}
		if labels, err := ReadLabels(bytes.NewReader(data)); err == nil {
			for i, l := range labels {
				if l > 9 {
					t.Fatalf("label %d is %d", i, l)
				}
			}
		}
	})
}

// TestCorruptGzipIsBlamed: a gzip file whose stream inflates to more bytes
// than the header promises but whose checksum fails is reported as a gzip
// checksum error, not as "unexpected data after" the promised items; a
// sound gzip file with extra data still is.
func TestCorruptGzipIsBlamed(t *testing.T) {
	content := append(idxLabels(1, 2, 3), "extra"...)
	sound := gzipped(t, content)
	if _, err := ReadLabels(bytes.NewReader(sound)); err == nil || !strings.Contains(err.Error(), "unexpected data after 3 labels") {
		t.Errorf("sound gzip with extra data: %v", err)
	}
	corrupt := bytes.Clone(sound)
	corrupt[len(corrupt)-8] ^= 0xff // the CRC-32 of the content
	_, err := ReadLabels(bytes.NewReader(corrupt))
	if err == nil || !strings.Contains(err.Error(), "gzip: invalid checksum") || strings.Contains(err.Error(), "unexpected data") {
		t.Errorf("gzip with a bad checksum: %v, want a gzip checksum error", err)
	}
}

// TestCheckContentWhicheverForm: the original test split, gzipped or
// decompressed, passes; a decompressed test image file with 64 pixel bytes
// changed loads (it is valid IDX) but is flagged, by name, as not the
// original.
func TestCheckContentWhicheverForm(t *testing.T) {
	src, err := DefaultDir()
	if err != nil {
		t.Skip(err)
	}
	// The test split only: decompressing the training set takes seconds
	// under -race, and TestDefaultDirRealMNIST checks its content.
	raw := t.TempDir()
	for _, base := range []string{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		img, err := os.ReadFile(filepath.Join(src, base+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		if _, err := data.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		b := data.Bytes()
		if base == "t10k-images-idx3-ubyte" {
			for i := 0; i < 64; i++ {
				b[16+1000*i+300] ^= 0x40
			}
		}
		if err := os.WriteFile(filepath.Join(raw, base), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{src, raw} {
		s, err := Load(dir, Test)
		if err != nil {
			t.Fatal(err)
		}
		w := CheckContent(dir, Test, s)
		altered := dir == raw
		switch {
		case !altered && len(w) != 0:
			t.Errorf("%s: %q, want no warning", dir, w)
		case altered && (len(w) != 1 || !strings.Contains(w[0], filepath.Join(raw, "t10k-images-idx3-ubyte")+" is not the original MNIST")):
			t.Errorf("altered: %q, want one warning naming the image file", w)
		}
	}
}
