#include "textflag.h"

// func biasReLU8(y, bias *float32, rows, n int, relu bool)
TEXT ·biasReLU8(SB), NOSPLIT, $0-33
	MOVQ y+0(FP), DI
	MOVQ bias+8(FP), DX
	MOVQ rows+16(FP), R8
	MOVQ n+24(FP), R9
	MOVBQZX relu+32(FP), R10
	SHRQ $3, R9
	VXORPS Y15, Y15, Y15
brow:
	MOVQ DX, BX
	MOVQ R9, CX
bcol:
	VMOVUPS (DI), Y0
	VADDPS (BX), Y0, Y0
	TESTQ R10, R10
	JZ bstore
	// 0 where 0 > x, else x: NaN and −0 stay.
	VMAXPS Y0, Y15, Y0
bstore:
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, BX
	DECQ CX
	JNZ bcol
	DECQ R8
	JNZ brow
	VZEROUPPER
	RET

// func reluGrad8(dz, y, dy *float32, db *float64, rows, n int, relu bool)
TEXT ·reluGrad8(SB), NOSPLIT, $0-49
	MOVQ dz+0(FP), DI
	MOVQ y+8(FP), R11
	MOVQ dy+16(FP), SI
	MOVQ db+24(FP), DX
	MOVQ rows+32(FP), R8
	MOVQ n+40(FP), R9
	MOVBQZX relu+48(FP), R10
	SHRQ $3, R9
	VXORPS Y15, Y15, Y15
grow:
	MOVQ DX, BX
	MOVQ R9, CX
gcol:
	VMOVUPS (SI), Y0
	TESTQ R10, R10
	JZ gstore
	// dy where y > 0 (ordered: false for NaN), zero elsewhere.
	VMOVUPS (R11), Y1
	VCMPPS $0x1e, Y15, Y1, Y2
	VANDPS Y2, Y0, Y0
	ADDQ $32, R11
gstore:
	VMOVUPS Y0, (DI)
	VCVTPS2PD X0, Y3
	VADDPD (BX), Y3, Y3
	VMOVUPD Y3, (BX)
	VEXTRACTF128 $1, Y0, X4
	VCVTPS2PD X4, Y4
	VADDPD 32(BX), Y4, Y4
	VMOVUPD Y4, 32(BX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $64, BX
	DECQ CX
	JNZ gcol
	DECQ R8
	JNZ grow
	VZEROUPPER
	RET

// func maxPool8(y, top, bottom *float32, ow, c int)
//
// For each position, 8 channels at a time: the maximum of top-left (SI),
// top-right (SI+c), bottom-left (DX), bottom-right (DX+c), each later
// value replacing it only when greater: VMAXPS v, m gives v when v > m,
// else m.
TEXT ·maxPool8(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ top+8(FP), SI
	MOVQ bottom+16(FP), DX
	MOVQ ow+24(FP), R8
	MOVQ c+32(FP), R9
	MOVQ R9, R10
	SHLQ $2, R10 // c in bytes
	SHRQ $3, R9  // c in vectors
ppos:
	MOVQ R9, CX
	MOVQ SI, AX
	MOVQ DX, BX
pch:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R10*1), Y1
	VMAXPS Y0, Y1, Y0
	VMOVUPS (BX), Y1
	VMAXPS Y0, Y1, Y0
	VMOVUPS (BX)(R10*1), Y1
	VMAXPS Y0, Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, DI
	DECQ CX
	JNZ pch
	LEAQ (SI)(R10*2), SI
	LEAQ (DX)(R10*2), DX
	DECQ R8
	JNZ ppos
	VZEROUPPER
	RET

// func maxPoolGrad8(dxTop, dxBottom, top, bottom, y, dy *float32, ow, c int)
//
// Masks of where the maximum came from: m0 the top-left value equal to it
// or the maximum NaN (unordered compare: then the top-left is a NaN too),
// m1 the top-right equal and not m0, m2 the bottom-left equal and not
// before, m3 none of those.
TEXT ·maxPoolGrad8(SB), NOSPLIT, $0-64
	MOVQ dxTop+0(FP), DI
	MOVQ dxBottom+8(FP), R11
	MOVQ top+16(FP), SI
	MOVQ bottom+24(FP), DX
	MOVQ y+32(FP), R12
	MOVQ dy+40(FP), R13
	MOVQ ow+48(FP), R8
	MOVQ c+56(FP), R9
	MOVQ R9, R10
	SHLQ $2, R10 // c in bytes
	SHRQ $3, R9  // c in vectors
	VPCMPEQD Y15, Y15, Y15 // all ones
qpos:
	MOVQ R9, CX
	MOVQ SI, AX
	MOVQ DX, BX
	MOVQ DI, R14
	MOVQ R11, R15
qch:
	VMOVUPS (R12), Y0 // maximum
	VMOVUPS (R13), Y1 // its gradient
	VCMPPS $0x08, (AX), Y0, Y2 // m0: equal or unordered
	VCMPPS $0x00, (AX)(R10*1), Y0, Y3
	VANDNPS Y3, Y2, Y3 // m1 = ¬m0 ∧ equal
	VORPS Y2, Y3, Y4 // taken
	VCMPPS $0x00, (BX), Y0, Y5
	VANDNPS Y5, Y4, Y5 // m2
	VORPS Y4, Y5, Y4
	VANDNPS Y15, Y4, Y6 // m3 = ¬taken
	VANDPS Y1, Y2, Y2
	VMOVUPS Y2, (R14)
	VANDPS Y1, Y3, Y3
	VMOVUPS Y3, (R14)(R10*1)
	VANDPS Y1, Y5, Y5
	VMOVUPS Y5, (R15)
	VANDPS Y1, Y6, Y6
	VMOVUPS Y6, (R15)(R10*1)
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, R14
	ADDQ $32, R15
	DECQ CX
	JNZ qch
	LEAQ (SI)(R10*2), SI
	LEAQ (DX)(R10*2), DX
	LEAQ (DI)(R10*2), DI
	LEAQ (R11)(R10*2), R11
	DECQ R8
	JNZ qpos
	VZEROUPPER
	RET

// laneIndex is 0, 1, …, 15: compared with n, it masks the lanes of a row
// of n ≤ 16 values held in two registers.
DATA laneIndex<>+0(SB)/4, $0
DATA laneIndex<>+4(SB)/4, $1
DATA laneIndex<>+8(SB)/4, $2
DATA laneIndex<>+12(SB)/4, $3
DATA laneIndex<>+16(SB)/4, $4
DATA laneIndex<>+20(SB)/4, $5
DATA laneIndex<>+24(SB)/4, $6
DATA laneIndex<>+28(SB)/4, $7
DATA laneIndex<>+32(SB)/4, $8
DATA laneIndex<>+36(SB)/4, $9
DATA laneIndex<>+40(SB)/4, $10
DATA laneIndex<>+44(SB)/4, $11
DATA laneIndex<>+48(SB)/4, $12
DATA laneIndex<>+52(SB)/4, $13
DATA laneIndex<>+56(SB)/4, $14
DATA laneIndex<>+60(SB)/4, $15
GLOBL laneIndex<>(SB), RODATA|NOPTR, $64

// func sparseAxpy(dst *float32, col *int32, val *float64, w *float32, count, n, rows int) bool
//
// Every value is converted into a register whose other lanes come from
// the zero X15, not from the previous value, so that iterations do not
// wait on each other through the conversion.
TEXT ·sparseAxpy(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), DI
	MOVQ col+8(FP), SI
	MOVQ val+16(FP), DX
	MOVQ w+24(FP), BX
	MOVQ count+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ rows+48(FP), R9
	VXORPS X15, X15, X15
	CMPQ R8, $16
	JA   axpyNext
	// A row of at most 16 values (a narrow first layer) stays in Y2 and
	// Y4 for the whole sparse row, under the masks Y8 and Y9 of its
	// lanes: the sums are the same, without a store and a reload a
	// column.
	MOVQ R8, X6
	VPBROADCASTD X6, Y6
	VMOVDQU laneIndex<>+0(SB), Y8
	VPCMPGTD Y8, Y6, Y8
	VMOVDQU laneIndex<>+32(SB), Y9
	VPCMPGTD Y9, Y6, Y9
	VMASKMOVPS (DI), Y8, Y2
	VMASKMOVPS 32(DI), Y9, Y4
axpyRegNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  axpyBad
	IMULQ R8, AX
	LEAQ (BX)(AX*4), R10
	VCVTSD2SS (DX), X15, X0
	VBROADCASTSS X0, Y0
	VMASKMOVPS (R10), Y8, Y1
	VMULPS Y1, Y0, Y1
	VADDPS Y2, Y1, Y2
	VMASKMOVPS 32(R10), Y9, Y3
	VMULPS Y3, Y0, Y3
	VADDPS Y4, Y3, Y4
	ADDQ $4, SI
	ADDQ $8, DX
	DECQ CX
	JNZ  axpyRegNext
	VMASKMOVPS Y2, Y8, (DI)
	VMASKMOVPS Y4, Y9, 32(DI)
	VZEROUPPER
	MOVB $1, ret+56(FP)
	RET
axpyNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  axpyBad
	IMULQ R8, AX
	LEAQ (BX)(AX*4), R10
	MOVQ DI, R11
	VCVTSD2SS (DX), X15, X0
	VBROADCASTSS X0, Y0
	// dst[j] += a·w[c·n+j]: VMULPS then VADDPS, eight at a time, then one
	// at a time, each rounded to float32 as Go's dst[j] += a*v rounds.
	MOVQ R8, R12
axpy8:
	CMPQ R12, $8
	JB   axpy1
	VMULPS (R10), Y0, Y1
	VADDPS (R11), Y1, Y1
	VMOVUPS Y1, (R11)
	ADDQ $32, R10
	ADDQ $32, R11
	SUBQ $8, R12
	JMP  axpy8
axpy1:
	TESTQ R12, R12
	JZ   axpyDone
	VMULSS (R10), X0, X1
	VADDSS (R11), X1, X1
	VMOVSS X1, (R11)
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ R12
	JMP  axpy1
axpyDone:
	ADDQ $4, SI
	ADDQ $8, DX
	DECQ CX
	JNZ  axpyNext
	VZEROUPPER
	MOVB $1, ret+56(FP)
	RET
axpyBad:
	VZEROUPPER
	MOVB $0, ret+56(FP)
	RET

// func sparseOuter(dst *float32, col *int32, val *float64, src *float32, count, n, rows int) bool
TEXT ·sparseOuter(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), DI
	MOVQ col+8(FP), SI
	MOVQ val+16(FP), DX
	MOVQ src+24(FP), BX
	MOVQ count+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ rows+48(FP), R9
	VXORPS X15, X15, X15
	CMPQ R8, $16
	JA   outerNext
	// src of at most 16 values stays in Y6 and Y7. Each dst row is
	// updated in pieces of 8, 4, 2 and 1 lanes with plain loads and
	// stores: a masked store would stop the next column's load, often
	// of the row just after, from being forwarded the stored bytes.
	MOVQ R8, X6
	VPBROADCASTD X6, Y6
	VMOVDQU laneIndex<>+0(SB), Y8
	VPCMPGTD Y8, Y6, Y8
	VMOVDQU laneIndex<>+32(SB), Y9
	VPCMPGTD Y9, Y6, Y9
	VMASKMOVPS (BX), Y8, Y6
	VMASKMOVPS 32(BX), Y9, Y7
	// R15 is 1 when the row starts with a full piece of 8, R14 the
	// lanes after it.
	XORQ R15, R15
	MOVQ R8, R14
	CMPQ R8, $8
	JB   outerRegNext
	MOVQ $1, R15
	SUBQ $8, R14
outerRegNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  outerBad
	IMULQ R8, AX
	LEAQ (DI)(AX*4), R12
	VCVTSD2SS (DX), X15, X0
	VBROADCASTSS X0, Y0
	VMULPS Y6, Y0, Y1
	VMULPS Y7, Y0, Y3
	TESTQ R15, R15
	JZ   outerPart
	VADDPS (R12), Y1, Y2
	VMOVUPS Y2, (R12)
	ADDQ $32, R12
	VMOVAPS Y3, Y1
outerPart:
	CMPQ R14, $8
	JB   outerPart4
	VADDPS (R12), Y1, Y2
	VMOVUPS Y2, (R12)
	JMP  outerRegDone
outerPart4:
	TESTQ $4, R14
	JZ   outerPart2
	VADDPS (R12), X1, X2
	VMOVUPS X2, (R12)
	ADDQ $16, R12
	VEXTRACTF128 $1, Y1, X1
outerPart2:
	TESTQ $2, R14
	JZ   outerPart1
	VMOVSD (R12), X2
	VADDPS X2, X1, X2
	VMOVSD X2, (R12)
	ADDQ $8, R12
	VPSRLDQ $8, X1, X1
outerPart1:
	TESTQ $1, R14
	JZ   outerRegDone
	VADDSS (R12), X1, X2
	VMOVSS X2, (R12)
outerRegDone:
	ADDQ $4, SI
	ADDQ $8, DX
	DECQ CX
	JNZ  outerRegNext
	VZEROUPPER
	MOVB $1, ret+56(FP)
	RET
outerNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  outerBad
	IMULQ R8, AX
	LEAQ (DI)(AX*4), R11
	MOVQ BX, R10
	VCVTSD2SS (DX), X15, X0
	VBROADCASTSS X0, Y0
	// dst[c·n+j] += a·src[j], rounded as in sparseAxpy.
	MOVQ R8, R12
outer8:
	CMPQ R12, $8
	JB   outer1
	VMULPS (R10), Y0, Y1
	VADDPS (R11), Y1, Y1
	VMOVUPS Y1, (R11)
	ADDQ $32, R10
	ADDQ $32, R11
	SUBQ $8, R12
	JMP  outer8
outer1:
	TESTQ R12, R12
	JZ   outerDone
	VMULSS (R10), X0, X1
	VADDSS (R11), X1, X1
	VMOVSS X1, (R11)
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ R12
	JMP  outer1
outerDone:
	ADDQ $4, SI
	ADDQ $8, DX
	DECQ CX
	JNZ  outerNext
	VZEROUPPER
	MOVB $1, ret+56(FP)
	RET
outerBad:
	VZEROUPPER
	MOVB $0, ret+56(FP)
	RET

// func finite32(v *float32, n int) bool
//
// A float32 is NaN or ±Inf when all eight exponent bits are set: the
// largest exponent field among the values, kept in four running maxima,
// is 0x7f800000 only when one of them is not finite.
TEXT ·finite32(SB), NOSPLIT, $0-17
	MOVQ v+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7f800000, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	SHRQ $5, CX
finite32loop:
	VPAND (SI), Y15, Y4
	VPAND 32(SI), Y15, Y5
	VPAND 64(SI), Y15, Y6
	VPAND 96(SI), Y15, Y7
	VPMAXUD Y4, Y0, Y0
	VPMAXUD Y5, Y1, Y1
	VPMAXUD Y6, Y2, Y2
	VPMAXUD Y7, Y3, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ finite32loop
	VPMAXUD Y1, Y0, Y0
	VPMAXUD Y3, Y2, Y2
	VPMAXUD Y2, Y0, Y0
	VPCMPEQD Y15, Y0, Y0
	VPTEST Y0, Y0
	SETEQ ret+16(FP)
	VZEROUPPER
	RET
