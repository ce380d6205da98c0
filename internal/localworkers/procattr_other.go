//go:build !linux

package localworkers

import "syscall"

// childProcAttr has no parent-death signal outside Linux; Stop still ends
// the workers when the coordinator exits normally or on a signal.
func childProcAttr() *syscall.SysProcAttr { return nil }
