#include "textflag.h"

// func add8(dst, src *float32, n int)
TEXT ·add8(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
loop:
	VMOVUPS (SI), Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func narrow4(dst *float32, src *float64, n int)
TEXT ·narrow4(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $2, CX
loop:
	VCVTPD2PSY (SI), X0
	VMOVUPS X0, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func widen4(dst *float64, src *float32, n int)
TEXT ·widen4(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $2, CX
loop:
	VCVTPS2PD (SI), Y0
	VMOVUPD Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func widenBias4(dst *float64, src *float32, bias *float64, rows, n int, relu bool)
TEXT ·widenBias4(SB), NOSPLIT, $0-41
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ bias+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ n+32(FP), R9
	MOVBQZX relu+40(FP), R10
	SHRQ $2, R9
	VXORPD Y15, Y15, Y15
wrow:
	MOVQ DX, BX
	MOVQ R9, CX
wcol:
	VCVTPS2PD (SI), Y0
	VADDPD (BX), Y0, Y0
	TESTQ R10, R10
	JZ wstore
	// max(0, x), NaN when x is: VMAXPD returns its second source on NaN.
	VMAXPD Y0, Y15, Y0
wstore:
	VMOVUPD Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	ADDQ $32, BX
	DECQ CX
	JNZ wcol
	DECQ R8
	JNZ wrow
	VZEROUPPER
	RET

// func narrowGrad4(dst *float32, db, y, dy *float64, rows, n int, relu bool)
TEXT ·narrowGrad4(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ db+8(FP), DX
	MOVQ y+16(FP), R11
	MOVQ dy+24(FP), SI
	MOVQ rows+32(FP), R8
	MOVQ n+40(FP), R9
	MOVBQZX relu+48(FP), R10
	SHRQ $2, R9
	VXORPD Y15, Y15, Y15
nrow:
	MOVQ DX, BX
	MOVQ R9, CX
ncol:
	VMOVUPD (SI), Y0
	TESTQ R10, R10
	JZ nnarrow
	// dy where y > 0 (ordered: false for NaN), zero elsewhere.
	VMOVUPD (R11), Y1
	VCMPPD $0x1e, Y15, Y1, Y2
	VANDPD Y2, Y0, Y0
nnarrow:
	VADDPD (BX), Y0, Y3
	VMOVUPD Y3, (BX)
	VCVTPD2PSY Y0, X4
	VMOVUPS X4, (DI)
	ADDQ $32, SI
	ADDQ $32, R11
	ADDQ $32, BX
	ADDQ $16, DI
	DECQ CX
	JNZ ncol
	DECQ R8
	JNZ nrow
	VZEROUPPER
	RET

// func adam4(p, grad, m, v *float64, n int, k *[4]float64)
TEXT ·adam4(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), AX
	VBROADCASTSD 0(AX), Y10 // c1
	VBROADCASTSD 8(AX), Y11 // c2
	VBROADCASTSD 16(AX), Y12 // alpha
	VBROADCASTSD 24(AX), Y13 // eps
	SHRQ $2, CX
adamloop:
	VMOVUPD (SI), Y0          // g
	VMOVUPD (R8), Y1          // m
	VSUBPD Y1, Y0, Y2         // g - m
	VMULPD Y10, Y2, Y2        // (g - m)·c1
	VADDPD Y2, Y1, Y1         // m + (g - m)·c1
	VMOVUPD Y1, (R8)
	VMOVUPD (R9), Y4          // v
	VMULPD Y0, Y0, Y3         // g·g
	VSUBPD Y4, Y3, Y3         // g² - v
	VMULPD Y11, Y3, Y3        // (g² - v)·c2
	VADDPD Y3, Y4, Y4         // v + (g² - v)·c2
	VMOVUPD Y4, (R9)
	VSQRTPD Y4, Y5
	VADDPD Y13, Y5, Y5        // √v + ε
	VMULPD Y12, Y1, Y6        // α·m
	VDIVPD Y5, Y6, Y6         // α·m / (√v + ε)
	VMOVUPD (DI), Y7
	VSUBPD Y6, Y7, Y7
	VMOVUPD Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ adamloop
	VZEROUPPER
	RET

// func adam8(p, grad, m, v, oldP, oldM, oldV *float32, n int, k *[4]float32)
TEXT ·adam8(SB), NOSPLIT, $0-72
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ oldP+32(FP), R10
	MOVQ oldM+40(FP), R11
	MOVQ oldV+48(FP), R12
	MOVQ n+56(FP), CX
	MOVQ k+64(FP), AX
	VBROADCASTSS 0(AX), Y10 // c1
	VBROADCASTSS 4(AX), Y11 // c2
	VBROADCASTSS 8(AX), Y12 // alpha
	VBROADCASTSS 12(AX), Y13 // eps
	SHRQ $3, CX
adam8loop:
	VMOVUPS (SI), Y0          // g
	VMOVUPS (R8), Y1          // m
	VMOVUPS (R9), Y4          // v
	VMOVUPS (DI), Y7          // p
	VMOVUPS Y1, (R11)         // the old values first: oldM may be m
	VMOVUPS Y4, (R12)
	VMOVUPS Y7, (R10)
	VSUBPS Y1, Y0, Y2         // g - m
	VMULPS Y10, Y2, Y2        // (g - m)·c1
	VADDPS Y2, Y1, Y1         // m + (g - m)·c1
	VMOVUPS Y1, (R8)
	VMULPS Y0, Y0, Y3         // g·g
	VSUBPS Y4, Y3, Y3         // g² - v
	VMULPS Y11, Y3, Y3        // (g² - v)·c2
	VADDPS Y3, Y4, Y4         // v + (g² - v)·c2
	VMOVUPS Y4, (R9)
	VSQRTPS Y4, Y5
	VADDPS Y13, Y5, Y5        // √v + ε
	VMULPS Y12, Y1, Y6        // α·m
	VDIVPS Y5, Y6, Y6         // α·m / (√v + ε)
	VSUBPS Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	DECQ CX
	JNZ adam8loop
	VZEROUPPER
	RET
