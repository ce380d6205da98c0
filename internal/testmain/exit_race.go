//go:build race

package testmain

import "syscall"

// exit ends the binary with code. It bypasses os.Exit, whose race runtime
// finaliser would pause for a second; os.Stdout and os.Stderr are unbuffered,
// so nothing written is lost.
func exit(code int) { syscall.Exit(code) }
