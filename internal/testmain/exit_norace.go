//go:build !race

package testmain

import "os"

// exit ends the binary with code.
func exit(code int) { os.Exit(code) }
