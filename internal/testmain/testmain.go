// Package testmain is the TestMain of this module's test binaries: it runs a
// package's tests, checks that no goroutine outlives them, and ends the
// binary without the race detector's exit pause.
//
// Under -race a Go binary that exits with status 0 sleeps one second first
// (the race runtime's atexit_sleep_ms, default 1000, which gives other
// threads time to report a last race). The README's test command builds
// about 35 race test binaries, and several tests start race-built children
// of their own; those seconds were idle slots of the suite's two-core
// budget. Nothing is lost by skipping the pause here: testing.M.Run has
// already failed the run for any race it detected, during a test or outside
// one.
package testmain

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Run runs m's tests. When they pass it checks that no goroutine outlives them
// (goleak, with opts), then ends the binary through exit.
func Run(m *testing.M, opts ...goleak.Option) {
	RunWithCleanup(m, nil, opts...)
}

// RunWithCleanup is Run for a TestMain with work of its own after the
// tests (processes to stop, folders to remove): cleanup, when not nil, runs
// after the tests and before the leak check.
func RunWithCleanup(m *testing.M, cleanup func(), opts ...goleak.Option) {
	quickRaceExitForChildren()
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	exit(code)
}

// quickRaceExitForChildren makes the race-built processes this binary
// starts (itself re-executed as a worker, for example) exit without the
// race runtime's one-second pause, unless GORACE is already set.
func quickRaceExitForChildren() {
	if _, set := os.LookupEnv("GORACE"); !set {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
}
