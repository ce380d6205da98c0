#include "textflag.h"

// The constants, four copies each (see expTable in activation.go): the
// offsets of its rows.
#define LOG2E 0(AX)
#define SHIFTER 32(AX)
#define LN2HI 64(AX)
#define LN2LO 96(AX)
#define ONE 448(AX)
#define CLAMPHI 480(AX)
#define CLAMPLO 512(AX)
#define MINUS2 544(AX)
#define T7 576(AX)
#define T5 608(AX)
#define T3 640(AX)
#define SMALL 672(AX)
#define ABSMASK 704(AX)
#define SIGNMASK 736(AX)

// EXP sets Y0 = exp(Y0), the argument clamped to ±708 (NaN stays NaN):
// exp(t) = 2^k·p(r), k = round(t/ln 2), r = t − k·ln 2 in two parts
// (Cody and Waite), p the degree-11 Taylor polynomial, accurate to about
// 1e-14 on |r| ≤ ln 2 / 2. Uses Y1–Y4; Y13 holds one, Y14 and Y15 the
// clamps.
#define EXP \
	VMINPD Y0, Y14, Y0 \
	VMAXPD Y0, Y15, Y0 \
	VMOVUPD SHIFTER, Y1 \
	VFMADD231PD LOG2E, Y0, Y1 \
	VSUBPD SHIFTER, Y1, Y2 \
	VMOVAPD Y0, Y3 \
	VFNMADD231PD LN2HI, Y2, Y3 \
	VFNMADD231PD LN2LO, Y2, Y3 \
	VMOVUPD 128(AX), Y4 \
	VFMADD213PD 160(AX), Y3, Y4 \
	VFMADD213PD 192(AX), Y3, Y4 \
	VFMADD213PD 224(AX), Y3, Y4 \
	VFMADD213PD 256(AX), Y3, Y4 \
	VFMADD213PD 288(AX), Y3, Y4 \
	VFMADD213PD 320(AX), Y3, Y4 \
	VFMADD213PD 352(AX), Y3, Y4 \
	VFMADD213PD 384(AX), Y3, Y4 \
	VFMADD213PD 416(AX), Y3, Y4 \
	VFMADD213PD Y13, Y3, Y4 \
	VFMADD213PD Y13, Y3, Y4 \
	VPSLLQ $52, Y1, Y1 \
	VMULPD Y1, Y4, Y0

// func sigmoid4(dst, src *float64, n int, k *expTable)
TEXT ·sigmoid4(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), AX
	VMOVUPD ONE, Y13
	VMOVUPD CLAMPHI, Y14
	VMOVUPD CLAMPLO, Y15
	VXORPD Y12, Y12, Y12
	SHRQ $2, CX
sigloop:
	VMOVUPD (SI), Y0
	VSUBPD Y0, Y12, Y0 // −x
	EXP
	VADDPD Y13, Y0, Y0 // 1 + e^−x
	VDIVPD Y0, Y13, Y0 // 1 / (1 + e^−x)
	VMOVUPD Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ sigloop
	VZEROUPPER
	RET

// func tanh4(dst, src *float64, n int, k *expTable)
TEXT ·tanh4(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), AX
	VMOVUPD ONE, Y13
	VMOVUPD CLAMPHI, Y14
	VMOVUPD CLAMPLO, Y15
	SHRQ $2, CX
tanhloop:
	VMOVUPD (SI), Y8        // x
	VANDPD ABSMASK, Y8, Y5  // |x|
	VANDPD SIGNMASK, Y8, Y6 // sign of x
	VMULPD MINUS2, Y5, Y0   // −2|x|
	EXP                     // e = exp(−2|x|)
	VSUBPD Y0, Y13, Y7      // 1 − e
	VADDPD Y13, Y0, Y0      // 1 + e
	VDIVPD Y0, Y7, Y7       // (1 − e)/(1 + e)
	VORPD Y6, Y7, Y7        // with x's sign
	// Near zero 1 − e cancels: x + x³·(−1/3 + x²·(2/15 − x²·17/315)).
	VMULPD Y8, Y8, Y9       // x²
	VMOVUPD T7, Y10
	VFMADD213PD T5, Y9, Y10
	VFMADD213PD T3, Y9, Y10
	VMULPD Y9, Y10, Y10
	VFMADD213PD Y8, Y8, Y10 // x·(…) + x
	VORPD Y6, Y10, Y10      // −0 stays −0
	VMOVUPD SMALL, Y11
	VCMPPD $1, Y11, Y5, Y11 // |x| < small
	VBLENDVPD Y11, Y10, Y7, Y7
	VMOVUPD Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ tanhloop
	VZEROUPPER
	RET
