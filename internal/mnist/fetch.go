package mnist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// maxFetchBytes bounds a downloaded file (the largest MNIST file is 9.5 MB).
const maxFetchBytes = 64 << 20

// Fetch downloads the four canonical MNIST gzip files from baseURL (each at
// baseURL/<name>) into dir, creating it. Every file is verified against its
// published SHA-256 before it is renamed into place, so a partial or altered
// download never leaves a file behind; files already in dir with the right
// digest are not downloaded again.
func Fetch(ctx context.Context, client *http.Client, baseURL, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mnist: fetch: %w", err)
	}
	for name, want := range canonicalSHA256 {
		path := filepath.Join(dir, name)
		if got, err := fileSHA256(path); err == nil && got == want {
			continue
		}
		url := strings.TrimSuffix(baseURL, "/") + "/" + name
		if err := fetchFile(ctx, client, url, path, want); err != nil {
			return fmt.Errorf("mnist: fetch %s: %w", url, err)
		}
	}
	return nil
}

func fetchFile(ctx context.Context, client *http.Client, url, path, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxFetchBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n > maxFetchBytes {
		return fmt.Errorf("larger than %d bytes", maxFetchBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("SHA-256 %s, want %s: refusing the file", got, want)
	}
	return os.Rename(tmp.Name(), path)
}
