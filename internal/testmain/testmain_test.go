package testmain

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// exitHelper, when set, makes this binary call exit with its value instead
// of running tests.
const exitHelper = "TESTMAIN_EXIT_HELPER"

func TestMain(m *testing.M) {
	if code, err := strconv.Atoi(os.Getenv(exitHelper)); err == nil {
		exit(code)
	}
	Run(m)
}

// runHelper re-executes this binary to call exit(code) and returns the
// exit status and how long the process took.
func runHelper(t *testing.T, code int) (int, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), exitHelper+"="+strconv.Itoa(code), "GORACE=atexit_sleep_ms=10000")
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, took
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), took
	}
	t.Fatalf("helper: %v", err)
	return 0, 0
}

// TestExitKeepsTheCode: the status passed to exit is the process's.
func TestExitKeepsTheCode(t *testing.T) {
	for _, code := range []int{0, 1, 3} {
		if got, _ := runHelper(t, code); got != code {
			t.Errorf("exit(%d): exit status %d", code, got)
		}
	}
}

// TestExitSkipsTheRacePause: a successful exit under -race skips the race
// runtime's pause (os.Exit(0) pauses; any other code never does), even
// with GORACE asking for ten seconds of it; a loaded machine's start-up of
// the helper stays far below that.
func TestExitSkipsTheRacePause(t *testing.T) {
	if _, took := runHelper(t, 0); took > 5*time.Second {
		t.Errorf("exit(0) took %v, want well under the 10 s pause GORACE asks for", took)
	}
}

// TestChildrenInheritQuickExit: Run sets GORACE for the processes tests
// start, unless the caller set it.
func TestChildrenInheritQuickExit(t *testing.T) {
	if got := os.Getenv("GORACE"); got == "" {
		t.Fatalf("GORACE = %q after Run, want it set", got)
	}
}
