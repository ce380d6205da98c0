package localworkers

import "syscall"

// childProcAttr makes the kernel kill a worker when the process that
// started it dies, however it dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
