//go:build unix

package nn

import "syscall"

// cpuSeconds is the CPU time (user and system) the process has used: on a
// machine shared with other work, rates per CPU second are steadier than
// rates per second of wall time, which count the time others held the core.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
