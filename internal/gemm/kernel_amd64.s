#include "textflag.h"

// func kernel6x16(k int, a *float32, rs, cs int, b, c *float32, ldc int, add bool, tiles, ldb int)
//
// For each of tiles 6×16 tiles, one under the other: A's value (i, p) is at
// a + 4·(i·rs + p·cs), with i counting on from tile to tile; rs and cs let
// the kernel read a packed panel (rs 1, cs 6), a row-major matrix (rs its
// stride, cs 1) or a transposed one (rs 1, cs its stride) alike. B's panel
// is packed, 16 values per step ldb values apart (half of a panel of nr
// columns), and the same for every tile. Each tile is
// added to C, or overwrites it when add is false. Y4–Y15 accumulate a tile,
// two 8-wide registers per row; each step of k loads 16 values of B's
// packed panel (Y0, Y1), broadcasts A's 6 (Y2, Y3 in turn) and issues 12
// fused multiply-adds. Looping over the tiles here rather than in Go spares
// a call per tile, which counts when k is short.
TEXT ·kernel6x16(SB), NOSPLIT, $0-80
	MOVQ a+8(FP), BX
	MOVQ rs+16(FP), R9
	MOVQ cs+24(FP), R11
	MOVQ b+32(FP), R13
	MOVQ c+40(FP), R12
	MOVQ ldc+48(FP), R8
	MOVQ tiles+64(FP), AX
	MOVQ ldb+72(FP), R14
	SHLQ $2, R14
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R11

tile:
	MOVQ k+0(FP), CX
	MOVQ BX, SI
	MOVQ R13, DI
	MOVQ R12, DX
	LEAQ (SI)(R9*2), R10
	ADDQ R9, R10

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

loop:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS (SI)(R9*1), Y3
	VFMADD231PS Y0, Y2, Y4
	VFMADD231PS Y1, Y2, Y5
	VFMADD231PS Y0, Y3, Y6
	VFMADD231PS Y1, Y3, Y7
	VBROADCASTSS (SI)(R9*2), Y2
	VBROADCASTSS (R10), Y3
	VFMADD231PS Y0, Y2, Y8
	VFMADD231PS Y1, Y2, Y9
	VFMADD231PS Y0, Y3, Y10
	VFMADD231PS Y1, Y3, Y11
	VBROADCASTSS (R10)(R9*1), Y2
	VBROADCASTSS (R10)(R9*2), Y3
	VFMADD231PS Y0, Y2, Y12
	VFMADD231PS Y1, Y2, Y13
	VFMADD231PS Y0, Y3, Y14
	VFMADD231PS Y1, Y3, Y15
	ADDQ R11, SI
	ADDQ R11, R10
	ADDQ R14, DI
	DECQ CX
	JNZ loop

	CMPB add+56(FP), $0
	JEQ overwrite
	VADDPS (DX), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS 32(DX), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS 32(DX), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS 32(DX), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS 32(DX), Y11, Y11
	VMOVUPS Y11, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y12, Y12
	VMOVUPS Y12, (DX)
	VADDPS 32(DX), Y13, Y13
	VMOVUPS Y13, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y14, Y14
	VMOVUPS Y14, (DX)
	VADDPS 32(DX), Y15, Y15
	VMOVUPS Y15, 32(DX)
	JMP next

overwrite:
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y12, (DX)
	VMOVUPS Y13, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y14, (DX)
	VMOVUPS Y15, 32(DX)

next:
	// The next tile: A six rows on (6·rs), C six rows on (6·ldc).
	LEAQ (R9)(R9*2), SI
	LEAQ (BX)(SI*2), BX
	LEAQ (R8)(R8*2), SI
	LEAQ (R12)(SI*2), R12
	DECQ AX
	JNZ tile
	VZEROUPPER
	RET

// func kernel6x32(k int, a *float32, rs, cs int, b, c *float32, ldc int, add bool, tiles int)
//
// kernel6x16 with 6×32 tiles in AVX-512: Z4–Z15 accumulate a tile, two
// 16-wide registers per row; each step of k loads 32 values of B's packed
// panel (Z0, Z1), broadcasts A's 6 (Z2, Z3 in turn) and issues 12 fused
// multiply-adds, twice kernel6x16's arithmetic for the same instructions.
TEXT ·kernel6x32(SB), NOSPLIT, $0-72
	MOVQ a+8(FP), BX
	MOVQ rs+16(FP), R9
	MOVQ cs+24(FP), R11
	MOVQ b+32(FP), R13
	MOVQ c+40(FP), R12
	MOVQ ldc+48(FP), R8
	MOVQ tiles+64(FP), AX
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R11

tile32:
	MOVQ k+0(FP), CX
	MOVQ BX, SI
	MOVQ R13, DI
	MOVQ R12, DX
	LEAQ (SI)(R9*2), R10
	ADDQ R9, R10

	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

loop32:
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VBROADCASTSS (SI), Z2
	VBROADCASTSS (SI)(R9*1), Z3
	VFMADD231PS Z0, Z2, Z4
	VFMADD231PS Z1, Z2, Z5
	VFMADD231PS Z0, Z3, Z6
	VFMADD231PS Z1, Z3, Z7
	VBROADCASTSS (SI)(R9*2), Z2
	VBROADCASTSS (R10), Z3
	VFMADD231PS Z0, Z2, Z8
	VFMADD231PS Z1, Z2, Z9
	VFMADD231PS Z0, Z3, Z10
	VFMADD231PS Z1, Z3, Z11
	VBROADCASTSS (R10)(R9*1), Z2
	VBROADCASTSS (R10)(R9*2), Z3
	VFMADD231PS Z0, Z2, Z12
	VFMADD231PS Z1, Z2, Z13
	VFMADD231PS Z0, Z3, Z14
	VFMADD231PS Z1, Z3, Z15
	ADDQ R11, SI
	ADDQ R11, R10
	ADDQ $128, DI
	DECQ CX
	JNZ loop32

	CMPB add+56(FP), $0
	JEQ overwrite32
	VADDPS (DX), Z4, Z4
	VMOVUPS Z4, (DX)
	VADDPS 64(DX), Z5, Z5
	VMOVUPS Z5, 64(DX)
	ADDQ R8, DX
	VADDPS (DX), Z6, Z6
	VMOVUPS Z6, (DX)
	VADDPS 64(DX), Z7, Z7
	VMOVUPS Z7, 64(DX)
	ADDQ R8, DX
	VADDPS (DX), Z8, Z8
	VMOVUPS Z8, (DX)
	VADDPS 64(DX), Z9, Z9
	VMOVUPS Z9, 64(DX)
	ADDQ R8, DX
	VADDPS (DX), Z10, Z10
	VMOVUPS Z10, (DX)
	VADDPS 64(DX), Z11, Z11
	VMOVUPS Z11, 64(DX)
	ADDQ R8, DX
	VADDPS (DX), Z12, Z12
	VMOVUPS Z12, (DX)
	VADDPS 64(DX), Z13, Z13
	VMOVUPS Z13, 64(DX)
	ADDQ R8, DX
	VADDPS (DX), Z14, Z14
	VMOVUPS Z14, (DX)
	VADDPS 64(DX), Z15, Z15
	VMOVUPS Z15, 64(DX)
	JMP next32

overwrite32:
	VMOVUPS Z4, (DX)
	VMOVUPS Z5, 64(DX)
	ADDQ R8, DX
	VMOVUPS Z6, (DX)
	VMOVUPS Z7, 64(DX)
	ADDQ R8, DX
	VMOVUPS Z8, (DX)
	VMOVUPS Z9, 64(DX)
	ADDQ R8, DX
	VMOVUPS Z10, (DX)
	VMOVUPS Z11, 64(DX)
	ADDQ R8, DX
	VMOVUPS Z12, (DX)
	VMOVUPS Z13, 64(DX)
	ADDQ R8, DX
	VMOVUPS Z14, (DX)
	VMOVUPS Z15, 64(DX)

next32:
	LEAQ (R9)(R9*2), SI
	LEAQ (BX)(SI*2), BX
	LEAQ (R8)(R8*2), SI
	LEAQ (R12)(SI*2), R12
	DECQ AX
	JNZ tile32
	VZEROUPPER
	RET
