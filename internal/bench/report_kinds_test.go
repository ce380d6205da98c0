package bench

import (
	"fmt"
	"strings"
	"testing"
)

// TestReportKindsAndCompression tables the sweep's element kinds against
// float32 (rows sized by the float32 vector) and the netsim-compression
// steps against the uncompressed one, each with its ratio; a kind or a
// run that is missing shows a dash.
func TestReportKindsAndCompression(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sizes, cfg.AllreduceWorkers, cfg.Kinds = []int{1 << 20}, []int{4}, []string{"float32", "fp16", "bf16"}
	r := &runner{cfg: cfg, cpus: 2}
	for impl, s := range map[string]float64{"ringtrain": 4e-3, "ringtrain-float32": 2e-3, "ringtrain-fp16": 1e-3} {
		r.records = append(r.records, Record{Suite: "allreduce", Impl: impl, Workers: 4, Bytes: 1 << 20, Seconds: s})
	}
	for impl, ms := range map[string]float64{"ringtrain": 44.75, "ringtrain-fp16": 20.74} {
		r.records = append(r.records, Record{Suite: "netsim-compression", Impl: impl, Workers: 4, LinkBits: 1e9, StepMillis: &StepSplit{Allreduce: ms}})
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	r.kindsSection(w)
	r.netsimCompressionSection(w)
	for _, want := range []string{
		"| float32 size | float64 | float32 | fp16 | bf16 |",
		"| 512 KiB | 4.00 ms (2.00×) | 2.00 ms (1.00×) | 1.00 ms (0.50×) | – |",
		"| 4† | 1 Gb/s | 44.75 | 20.74 (0.46×) | – |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
