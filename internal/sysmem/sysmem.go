// Package sysmem reads the memory a process may use, from the machine and
// its cgroup, and sizes in bytes as flags take them.
package sysmem

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Bytes is a size in bytes that reads and prints with binary units
// ("3GiB", "512MiB", "1.5G", "1048576").
type Bytes uint64

func (b Bytes) String() string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", uint64(b))
}

// Set parses a size: a number with an optional unit, K/KiB, M/MiB, G/GiB,
// T/TiB (all binary) or B.
func (b *Bytes) Set(s string) error {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "mb": 1 << 20,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "tb": 1 << 40}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 || v*mult >= 1<<63 {
		return fmt.Errorf("size %q: want a number of bytes, with K, M, G or T (binary units) if you like", quoted(s))
	}
	*b = Bytes(v * mult)
	return nil
}

// Limit is the memory this process may use: the machine's, or its
// cgroup's limit when that is lower; 0 when neither can be read (not
// Linux). from says where the figure comes from.
func Limit() (limit Bytes, from string) {
	if kb, ok := meminfoTotal(); ok {
		limit, from = Bytes(kb)<<10, "the machine's memory (/proc/meminfo)"
	}
	for _, f := range cgroupLimitFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || v == 0 {
			continue // "max": no limit
		}
		if limit == 0 || Bytes(v) < limit {
			limit, from = Bytes(v), "the cgroup's limit ("+f+")"
		}
	}
	return limit, from
}

func meminfoTotal() (kb uint64, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), "MemTotal:"); found {
			v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cgroupLimitFiles lists the files that may hold this process's memory
// limit: cgroup v2's memory.max and v1's memory.limit_in_bytes, at the
// process's own cgroup and at the root of the hierarchy.
func cgroupLimitFiles() []string {
	files := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return files
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"))
		case strings.Contains(","+parts[1]+",", ",memory,"):
			files = append(files, filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	return files
}

// quoted returns at most the first 32 bytes of s: an error never echoes a
// whole flag value of megabytes.
func quoted(s string) string {
	if len(s) <= 32 {
		return s
	}
	return s[:32] + fmt.Sprintf("… (%d bytes)", len(s))
}
