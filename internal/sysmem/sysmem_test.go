package sysmem

import (
	"runtime"
	"strings"
	"testing"
)

// TestBytes reads and prints sizes, and refuses what is not one without
// echoing it whole.
func TestBytes(t *testing.T) {
	for in, want := range map[string]Bytes{"1048576": 1 << 20, "3GiB": 3 << 30, "1.5G": 3 << 29, "512 MiB": 512 << 20, "2k": 2048, "7B": 7} {
		var b Bytes
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, b, err, want)
		}
	}
	for _, bad := range []string{"", "-1G", "3 parsecs", "G", strings.Repeat("9", 10<<20) + "Q"} {
		var b Bytes
		if err := b.Set(bad); err == nil || len(err.Error()) > 200 {
			t.Errorf("Set(%.20q…) = %v, %v; want a short error", bad, b, err)
		}
	}
	if s := Bytes(3 << 30).String(); s != "3.0 GiB" {
		t.Errorf("String = %q", s)
	}
}

// TestLimitReadsTheMachine: on Linux the limit is the machine's memory or
// less, and says where it comes from.
func TestLimitReadsTheMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and /sys/fs/cgroup")
	}
	limit, from := Limit()
	if limit < 64<<20 || from == "" {
		t.Errorf("Limit = %v from %q", limit, from)
	}
}
