package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A job's output files: every location it will write is checked before the
// first step (a job never trains for an hour to fail in its last save), an
// earlier run's file is never replaced unless Config.Overwrite says so, and
// a final checkpoint that cannot be written where asked is written
// somewhere safe instead, and the error says where.

// output is a file the job writes at its end, with the flag that names it.
type output struct{ flag, path string }

// outputs lists the files the job is configured to write at its end.
func (c Config) outputs() []output {
	var outs []output
	for _, o := range []output{{"-checkpoint", c.Checkpoint}, {"-summary", c.Summary}, {"-trace", c.Trace}, {"-plot", c.Plot}} {
		if o.path != "" {
			outs = append(outs, o)
		}
	}
	return outs
}

// checkOutputs checks that every output can be written: its folder exists
// and takes files, no two outputs share a path, and none would replace an
// existing file unless Overwrite, or unless the job resumes from
// CheckpointDir (the files are then its own, from its earlier attempt:
// a coordinator restarted after a failure must not refuse to go on). It
// creates CheckpointDir if need be.
func (c Config) checkOutputs() error {
	overwrite := c.Overwrite
	if c.CheckpointDir != "" {
		if names, err := checkpointFiles(c.CheckpointDir); err == nil && len(names) > 0 {
			overwrite = true
		}
	}
	seen := map[string]string{}
	var earlier []string // outputs an earlier run left
	for _, o := range c.outputs() {
		abs, err := filepath.Abs(o.path)
		if err != nil {
			return fmt.Errorf("coordinator: %s %s: %w", o.flag, o.path, err)
		}
		if prev, ok := seen[abs]; ok {
			return fmt.Errorf("coordinator: %s and %s both name %s: give each its own file", prev, o.flag, o.path)
		}
		seen[abs] = o.flag
		if fi, err := os.Stat(o.path); err == nil && fi.Mode().IsRegular() && !overwrite {
			earlier = append(earlier, fmt.Sprintf("%s %s (written %s)", o.flag, o.path, fi.ModTime().Format("2006-01-02 15:04")))
			continue
		}
		if err := CheckOutputFile(o.flag, o.path, overwrite); err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
	}
	if len(earlier) > 0 {
		return fmt.Errorf("coordinator: an earlier run's files are where this one writes: %s; give -overwrite to replace them, or other paths",
			strings.Join(earlier, ", "))
	}
	if dir := c.CheckpointDir; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("coordinator: -checkpoint-dir %s: %w", dir, unwrapPath(err))
		}
		if err := probeWritable(dir); err != nil {
			return fmt.Errorf("coordinator: -checkpoint-dir %s: %w", dir, err)
		}
	}
	return nil
}

// CheckOutputFile checks that path, named by flag, can be written: its
// folder exists and takes new files, and path is not a folder. An existing
// file is refused unless overwrite: it is an earlier run's result.
func CheckOutputFile(flag, path string, overwrite bool) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s %s is a folder: give a file name", flag, path)
	case err == nil && !overwrite:
		return fmt.Errorf("%s %s exists (written %s, by an earlier run?): give -overwrite to replace it, or another %s",
			flag, path, fi.ModTime().Format("2006-01-02 15:04"), flag)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: %w", flag, path, unwrapPath(err))
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: the folder %s does not exist", flag, path, dir)
	case err != nil:
		return fmt.Errorf("%s %s: %w", flag, path, unwrapPath(err))
	case !di.IsDir():
		return fmt.Errorf("%s %s: %s is not a folder", flag, path, dir)
	}
	if err := probeWritable(dir); err != nil {
		return fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return nil
}

// probeWritable creates and removes a file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".ringtrain-probe-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// unwrapPath drops a PathError's operation and path, which the caller's
// message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
