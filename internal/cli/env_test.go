package cli

import (
	"flag"
	"strings"
	"testing"
)

func TestEnvironmentFillsUnsetFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	workers := fs.Int("local-workers", 0, "")
	epochs := fs.Int("epochs", 5, "")
	t.Setenv("RINGTRAIN_LOCAL_WORKERS", "4")
	t.Setenv("RINGTRAIN_EPOCHS", "9")
	if err := parse(fs, []string{"-epochs", "2"}); err != nil {
		t.Fatal(err)
	}
	if *workers != 4 || *epochs != 2 {
		t.Fatalf("local-workers %d (want 4 from the environment), epochs %d (want 2: the flag wins)", *workers, *epochs)
	}
}

func TestBadEnvironmentValueIsNamed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("batch", 32, "")
	t.Setenv("RINGTRAIN_BATCH", "many")
	err := parse(fs, nil)
	if err == nil || !strings.Contains(err.Error(), `RINGTRAIN_BATCH="many"`) {
		t.Fatalf("got %v", err)
	}
}
