package coordinator

import (
	"strings"
	"testing"
)

// TestCompressionConfig accepts the three compressions (and the empty
// string, as none) and refuses an unknown one and any compression with
// -deterministic, naming why.
func TestCompressionConfig(t *testing.T) {
	for _, c := range []struct {
		compression   string
		deterministic bool
		want          string // "" accepts
	}{
		{"", false, ""},
		{CompressionNone, false, ""},
		{CompressionFP16, false, ""},
		{CompressionBF16, false, ""},
		{CompressionNone, true, ""},
		{"fp8", false, `compression "fp8": want "none", "fp16" or "bf16"`},
		{CompressionFP16, true, "-compression fp16 cannot be combined with -deterministic"},
		{CompressionBF16, true, "-compression bf16 cannot be combined with -deterministic"},
	} {
		cfg := DefaultConfig()
		cfg.LocalWorkers, cfg.Compression, cfg.Deterministic = 2, c.compression, c.deterministic
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("compression %q, deterministic %v: %v", c.compression, c.deterministic, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("compression %q, deterministic %v: error %v, want one saying %q", c.compression, c.deterministic, err, c.want)
		}
	}
}
