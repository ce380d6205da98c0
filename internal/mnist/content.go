package mnist

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// contentSHA256 holds the SHA-256 digests of the four original files'
// content: the IDX bytes, as they are once decompressed. A file is checked
// against them whichever form it is stored in, gzip or not.
var contentSHA256 = map[string]string{
	"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
	"train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
	"t10k-images-idx3-ubyte":  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
	"t10k-labels-idx1-ubyte":  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

// CheckContent compares split, as loaded from dir, with the original
// MNIST's, file by file, and returns one warning per file whose content
// differs, naming it and its digest. It hashes the parsed set (the IDX
// parser accepts nothing but the exact header and body, so the set
// determines the file's content), not the files again. It is for
// user-supplied folders, which may legitimately hold other data in the
// MNIST format (Fashion-MNIST, say).
func CheckContent(dir string, split Split, s *Set) []string {
	var warnings []string
	check := func(base string, h hash.Hash) {
		got := hex.EncodeToString(h.Sum(nil))
		if want := contentSHA256[base]; got != want {
			path, err := findFile(dir, base)
			if err != nil {
				path = base
			}
			warnings = append(warnings, fmt.Sprintf("%s is not the original MNIST file: its content (decompressed) has SHA-256 %s, want %s; "+
				"fine for other data in the MNIST format, otherwise the file is corrupt", path, got, want))
		}
	}
	images := sha256.New()
	binary.Write(images, binary.BigEndian, []uint32{imageMagic, uint32(s.Count), uint32(s.Rows), uint32(s.Cols)})
	images.Write(s.Pixels)
	check(string(split)+"-images-idx3-ubyte", images)
	labels := sha256.New()
	binary.Write(labels, binary.BigEndian, []uint32{labelMagic, uint32(s.Count)})
	labels.Write(s.Labels)
	check(string(split)+"-labels-idx1-ubyte", labels)
	return warnings
}
