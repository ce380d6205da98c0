#include "textflag.h"

// func add8(sum *int64, grad *float64, n int, k *[3]float64) int
// k holds the scale 2^F, the limit, and 0.5.
TEXT ·add8(SB), NOSPLIT, $0-40
	MOVQ sum+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ k+24(FP), AX
	VBROADCASTSD 0(AX), Z10  // scale
	VBROADCASTSD 8(AX), Z11  // limit
	VBROADCASTSD 16(AX), Z12 // 0.5
	MOVQ $0x8000000000000000, BX
	VPBROADCASTQ BX, Z13     // sign mask
	XORQ R8, R8              // values added
	SHRQ $3, CX
	JZ done
loop:
	VMOVUPD (SI), Z0
	VMULPD Z10, Z0, Z1       // y = x·scale
	VANDNPD Z1, Z13, Z2      // |y|
	VCMPPD $0x11, Z11, Z2, K1 // |y| < limit, false for NaN
	KMOVB K1, BX
	CMPB BX, $0xff
	JNE done                 // a value out of range: the caller takes this group
	VANDPD Z13, Z1, Z3       // sign of y
	VORPD Z12, Z3, Z3        // ±0.5
	VADDPD Z3, Z1, Z1        // y ± 0.5
	VCVTTPD2QQ Z1, Z4        // truncated, as int64(…) does
	VPADDQ (DI), Z4, Z4
	VMOVDQU64 Z4, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $8, R8
	DECQ CX
	JNZ loop
done:
	MOVQ R8, ret+32(FP)
	VZEROUPPER
	RET

// AVX2 has no float64 to int64 conversion: ADD4 truncates z = y ± 0.5 from
// its bits instead, |z| being the mantissa m (with its implicit bit) shifted
// by the exponent e−1075, left or right, a shift of 64 or more (or a
// "negative" one, taken as unsigned) giving 0. That is exact, as CVTTSD2SQ
// is, for every |z| < 2^63, so the whole range needs no fallback. The sign
// is applied last as (v ^ s) − s, s all ones where z < 0.
//
// ADD4 converts the four values in Y0 and adds them to (DI), jumping to
// done if one is out of range (or NaN or infinite).
#define ADD4 \
	VMULPD Y10, Y0, Y1 /* y = x·scale */ \
	VANDNPD Y1, Y13, Y2 /* |y| */ \
	VCMPPD $0x11, Y11, Y2, Y3 /* |y| < limit, false for NaN */ \
	VMOVMSKPD Y3, BX          \
	CMPQ BX, $0xf             \
	JNE done                  \
	VANDPD Y13, Y1, Y3 /* sign of y */ \
	VORPD Y12, Y3, Y3 /* ±0.5 */ \
	VADDPD Y3, Y1, Y1 /* z = y ± 0.5 */ \
	VANDNPD Y1, Y13, Y2 /* |z| */ \
	VPSRLQ $52, Y2, Y3 /* biased exponent */ \
	VPSUBQ Y14, Y3, Y4 /* e − 1075: left shift */ \
	VPSUBQ Y3, Y14, Y5 /* 1075 − e: right shift */ \
	VPAND Y15, Y2, Y2 /* mantissa bits */ \
	VPOR Y9, Y2, Y2 /* and the implicit one */ \
	VPSLLVQ Y4, Y2, Y4        \
	VPSRLVQ Y5, Y2, Y5        \
	VPOR Y5, Y4, Y4 /* trunc(|z|) */ \
	VPCMPGTQ Y1, Y8, Y3 /* s = z < 0, as int64 */ \
	VPXOR Y3, Y4, Y4          \
	VPSUBQ Y3, Y4, Y4 /* trunc(z) */ \
	VPADDQ (DI), Y4, Y4       \
	VMOVDQU Y4, (DI)

// SETUP4 loads the arguments and the constants ADD4 uses.
#define SETUP4 \
	MOVQ sum+0(FP), DI           \
	MOVQ grad+8(FP), SI          \
	MOVQ n+16(FP), CX            \
	MOVQ k+24(FP), AX            \
	VBROADCASTSD 0(AX), Y10 /* scale */ \
	VBROADCASTSD 8(AX), Y11 /* limit */ \
	VBROADCASTSD 16(AX), Y12 /* 0.5 */ \
	MOVQ $0x8000000000000000, BX \
	MOVQ BX, X13                 \
	VPBROADCASTQ X13, Y13 /* sign mask */ \
	MOVQ $1075, BX               \
	MOVQ BX, X14                 \
	VPBROADCASTQ X14, Y14 /* exponent bias + 52 */ \
	MOVQ $0x000fffffffffffff, BX \
	MOVQ BX, X15                 \
	VPBROADCASTQ X15, Y15 /* mantissa mask */ \
	MOVQ $0x0010000000000000, BX \
	MOVQ BX, X9                  \
	VPBROADCASTQ X9, Y9 /* implicit bit */ \
	VPXOR Y8, Y8, Y8 /* zero */ \
	XORQ R8, R8 /* values added */ \
	SHRQ $2, CX

// func add4(sum *int64, grad *float64, n int, k *[3]float64) int
TEXT ·add4(SB), NOSPLIT, $0-40
	SETUP4
	JZ done
loop:
	VMOVUPD (SI), Y0
	ADD4
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ loop
done:
	MOVQ R8, ret+32(FP)
	VZEROUPPER
	RET

// func add4f32(sum *int64, grad *float32, n int, k *[3]float64) int
TEXT ·add4f32(SB), NOSPLIT, $0-40
	SETUP4
	JZ done
loop:
	VCVTPS2PD (SI), Y0 // exact widening
	ADD4
	ADDQ $16, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ loop
done:
	MOVQ R8, ret+32(FP)
	VZEROUPPER
	RET
