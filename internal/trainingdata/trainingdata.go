// Package trainingdata finds a job's data: the MNIST training and test
// sets, read from a folder or from the GoMNIST module, after fetching them
// from a URL when asked (each file verified against its published
// SHA-256). A fetch honours the caller's context: cancelling it (Ctrl-C)
// stops the download at once and leaves no partial file.
package trainingdata

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"ringtrain/internal/mnist"
)

// Source says where the data comes from.
type Source struct {
	// Dir holds the MNIST files. Empty means the GoMNIST module's copy,
	// or with URL the user's cache folder (ringtrain/mnist in it).
	Dir string
	// URL, when set, is where the four MNIST gzip files are fetched from
	// (URL/train-images-idx3-ubyte.gz, ...) into Dir; files already there
	// with the right digest are not fetched again.
	URL string
	// Client makes the requests; nil means a plain http.Client.
	Client *http.Client
	// FetchTimeout bounds the whole download (default DefaultFetchTimeout).
	FetchTimeout time.Duration
}

// DefaultFetchTimeout bounds a download when Source does not say.
const DefaultFetchTimeout = 5 * time.Minute

// Load fetches the data when src has a URL, then reads the training and
// test sets. Files from a user's folder that are valid but not the
// original MNIST draw a warning on log.
func Load(ctx context.Context, src Source, log *slog.Logger) (train, test *mnist.Set, err error) {
	dir := src.Dir
	if src.URL != "" {
		if dir, err = fetch(ctx, src, log); err != nil {
			return nil, nil, err
		}
	}
	return read(dir, log)
}

// fetch downloads the files into src's folder and returns the folder.
func fetch(ctx context.Context, src Source, log *slog.Logger) (string, error) {
	dir := src.Dir
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("trainingdata: no folder for the fetched data (give -data): %w", err)
		}
		dir = filepath.Join(cache, "ringtrain", "mnist")
	}
	client := src.Client
	if client == nil {
		client = &http.Client{}
	}
	timeout := src.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := mnist.Fetch(ctx, client, src.URL, dir); err != nil {
		return "", err
	}
	log.Info("MNIST fetched and verified", "url", src.URL, "dir", dir)
	return dir, nil
}

// read reads the training and test sets from dir, or from the GoMNIST
// module when dir is empty.
func read(dir string, log *slog.Logger) (train, test *mnist.Set, err error) {
	userDir := dir != ""
	if !userDir {
		if dir, err = mnist.DefaultDir(); err != nil {
			return nil, nil, err
		}
	}
	if train, err = mnist.Load(dir, mnist.Train); err != nil {
		return nil, nil, err
	}
	if test, err = mnist.Load(dir, mnist.Test); err != nil {
		return nil, nil, err
	}
	if userDir {
		// DefaultDir verified the module's files; a user's may be
		// anything in the MNIST format.
		for _, w := range append(mnist.CheckContent(dir, mnist.Train, train), mnist.CheckContent(dir, mnist.Test, test)...) {
			log.Warn(w)
		}
	}
	if train.Features() != test.Features() {
		return nil, nil, fmt.Errorf("mnist: training images are %d×%d but test images %d×%d", train.Rows, train.Cols, test.Rows, test.Cols)
	}
	log.Info("MNIST loaded", "dir", dir, "train", train.Count, "test", test.Count)
	return train, test, nil
}
