package ringtcp

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// createShm creates a file of size bytes in shmDir, named after this
// process, readable and writable by this user only, with its pages
// allocated (so that a full tmpfs fails here rather than with SIGBUS
// later), and maps it. It first removes the files of processes that died
// before their neighbour mapped them.
func createShm(size int) (mem []byte, path string, err error) {
	removeOrphans()
	f, err := os.CreateTemp(shmDir, fmt.Sprintf("%s%d-*", shmFilePrefix, os.Getpid()))
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	path = f.Name()
	fail := func(err error) ([]byte, string, error) {
		os.Remove(path)
		return nil, "", err
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(size)); err != nil {
		return fail(fmt.Errorf("allocate %d bytes in %s: %w", size, shmDir, err))
	}
	mem, err = syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("map %s: %w", path, err))
	}
	return mem, path, nil
}

// removeOrphans removes the rings' files in shmDir whose creator no
// longer runs: a process killed between offering its ring and its
// neighbour's answer leaves its file. A file whose creator this process
// cannot see (another pid namespace sharing the directory) may be removed
// while offered; its neighbour then declines it, and that direction stays
// on TCP.
func removeOrphans() {
	names, _ := filepath.Glob(filepath.Join(shmDir, shmFilePrefix+"*"))
	for _, path := range names {
		pid, ok := ringFilePID(filepath.Base(path))
		if ok && pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Remove(path)
		}
	}
}

// openShm maps the file name of shmDir, of exactly size bytes, and returns
// the mapping and the file's path. name must be a ring's (see
// ringFilePID): a neighbour cannot make this process map any other file,
// nor follow a link.
func openShm(name string, size int) (mem []byte, path string, err error) {
	if _, ok := ringFilePID(name); !ok {
		return nil, "", fmt.Errorf("%q is not the name of a ring's file", name)
	}
	path = filepath.Join(shmDir, name)
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, "", fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, "", fmt.Errorf("%s is not a regular file", path)
	case st.Uid != uint32(os.Geteuid()):
		return nil, "", fmt.Errorf("%s belongs to user %d, not this process's %d", path, st.Uid, os.Geteuid())
	case st.Size != int64(size):
		return nil, "", fmt.Errorf("%s holds %d bytes, the ring %d", path, st.Size, size)
	}
	mem, err = syscall.Mmap(fd, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, "", fmt.Errorf("map %s: %w", path, err)
	}
	return mem, path, nil
}

func unmapShm(mem []byte) { syscall.Munmap(mem) }

func removeShm(path string) { os.Remove(path) }

// shmName is the name an offer gives of the file at path.
func shmName(path string) string { return filepath.Base(path) }
