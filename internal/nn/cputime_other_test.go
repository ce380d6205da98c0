//go:build !unix

package nn

// cpuSeconds is not measured here: rates per CPU second are not reported.
func cpuSeconds() float64 { return 0 }
