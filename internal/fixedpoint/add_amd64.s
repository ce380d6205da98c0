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
