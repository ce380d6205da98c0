package bench

import (
	"strings"
	"testing"
)

// TestPeerRowsNameTheirBLAS checks that a peer's row names the BLAS
// library it mapped, in bold when it is the reference BLAS, and that the
// reference BLAS is told from optimised ones by its path.
func TestPeerRowsNameTheirBLAS(t *testing.T) {
	openblas := "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"
	netlib := "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so /usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"
	if isReferenceBLAS(openblas) || !isReferenceBLAS(netlib) {
		t.Fatalf("reference BLAS: OpenBLAS %v, netlib %v", isReferenceBLAS(openblas), isReferenceBLAS(netlib))
	}
	row := peerRowNote(map[string]any{"blas": openblas, "reference_blas": false}, "3 processes on 2 cores")
	if !strings.Contains(row, openblas) || strings.Contains(row, "**") || !strings.HasSuffix(row, "; 3 processes on 2 cores") {
		t.Fatalf("OpenBLAS row note %q", row)
	}
	row = peerRowNote(map[string]any{"blas": netlib, "reference_blas": true}, "")
	if !strings.HasPrefix(row, "**") || !strings.HasSuffix(row, "**") || !strings.Contains(row, "reference") {
		t.Fatalf("reference BLAS row note %q, want it in bold", row)
	}
	if got := peerRowNote(map[string]any{}, "note"); got != "note" {
		t.Fatalf("a row without BLAS: %q", got)
	}
}
