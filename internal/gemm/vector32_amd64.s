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

// func sparseAxpy(dst *float32, col *int32, val *float64, w *float32, count, n, rows int) bool
TEXT ·sparseAxpy(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), DI
	MOVQ col+8(FP), SI
	MOVQ val+16(FP), DX
	MOVQ w+24(FP), BX
	MOVQ count+32(FP), CX
	MOVQ n+40(FP), R8
	MOVQ rows+48(FP), R9
axpyNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  axpyBad
	IMULQ R8, AX
	LEAQ (BX)(AX*4), R10
	MOVQ DI, R11
	VCVTSD2SS (DX), X0, X0
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
outerNext:
	MOVLQSX (SI), AX
	CMPQ AX, R9
	JAE  outerBad
	IMULQ R8, AX
	LEAQ (DI)(AX*4), R11
	MOVQ BX, R10
	VCVTSD2SS (DX), X0, X0
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
