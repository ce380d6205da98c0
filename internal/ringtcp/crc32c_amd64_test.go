package ringtcp

import "testing"

// TestCRC32CWithoutAVX512 checks the PCLMULQDQ path, which CPUs without
// AVX-512 take, on this one too.
func TestCRC32CWithoutAVX512(t *testing.T) {
	if !useCLMUL {
		t.Skip("this CPU has no PCLMULQDQ")
	}
	avx512 := useAVX512
	t.Cleanup(func() { useAVX512 = avx512 })
	useAVX512 = false
	checkCRC32C(t)
}
