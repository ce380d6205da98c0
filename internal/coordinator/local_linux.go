package coordinator

import "syscall"

// childProcAttr makes the kernel kill a local worker when the coordinator
// dies, however it dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
