//go:build !race

package testmain

import "os"

// Exit ends the binary with code.
func Exit(code int) { os.Exit(code) }
