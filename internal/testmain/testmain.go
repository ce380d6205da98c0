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

	"go.uber.org/goleak"
)

// M is what Run needs of a *testing.M; a TestMain may wrap its M to add
// work around the tests.
type M interface {
	Run() int
}

// Run runs m's tests. When they pass it checks that no goroutine outlives them
// (goleak, with opts), then ends the binary through Exit.
func Run(m M, opts ...goleak.Option) {
	Exit(RunTests(m, nil, opts...))
}

// RunTests is Run without the exit, for a TestMain with work of its own
// after the tests: it runs them, then cleanup (when not nil; processes to
// stop, folders to remove), then the leak check, and returns the binary's
// exit code.
func RunTests(m M, cleanup func(), opts ...goleak.Option) int {
	QuickRaceExitForChildren()
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code != 0 {
		return code
	}
	if err := goleak.Find(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		return 1
	}
	return 0
}

// QuickRaceExitForChildren makes the race-built processes this binary starts
// (itself re-executed as a worker, for example) exit without the race
// runtime's one-second pause, unless GORACE is already set.
func QuickRaceExitForChildren() {
	if _, set := os.LookupEnv("GORACE"); !set {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
}
