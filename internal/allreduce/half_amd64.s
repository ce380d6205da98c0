#include "textflag.h"

// func hasF16C() bool
TEXT ·hasF16C(SB), NOSPLIT, $0-1
	MOVL $1, AX
	XORL CX, CX
	CPUID
	SHRL $29, CX
	ANDL $1, CX
	MOVB CX, ret+0(FP)
	RET

// LOST adds d = (x − r)·scale (x in Y0, r in Y7, scale at (R9)) to the
// eight float32s at (BX) where d is finite (d − d = 0), then advances BX.
// Y10 holds zeros. When
// every d is zero (values that were 16-bit already, as in the all-gather)
// it leaves memory alone: label is where it jumps to skip the store.
#define LOST(label) \
	VSUBPS Y7, Y0, Y8; \
	VBROADCASTSS (R9), Y9; \
	VMULPS Y9, Y8, Y8; \
	VSUBPS Y8, Y8, Y9; \
	VCMPPS $0, Y10, Y9, Y9; \
	VANDPS Y9, Y8, Y8; \
	VPTEST Y8, Y8; \
	JZ label; \
	VADDPS (BX), Y8, Y8; \
	VMOVUPS Y8, (BX); \
label: \
	ADDQ $32, BX

// func narrowF16(dst *byte, src *float32, n int)
TEXT ·narrowF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ nf_done
nf_loop:
	VMOVUPS (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU X1, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ nf_loop
nf_done:
	VZEROUPPER
	RET

// func narrowLostF16(dst *byte, src, lost *float32, n int, scale float32)
TEXT ·narrowLostF16(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lost+16(FP), BX
	MOVQ n+24(FP), CX
	LEAQ scale+32(FP), R9
	VXORPS Y10, Y10, Y10
	SHRQ $3, CX
	JZ nlf_done
nlf_loop:
	VMOVUPS (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU X1, (DI)
	VCVTPH2PS X1, Y7
	LOST(nlf_kept)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ nlf_loop
nlf_done:
	VZEROUPPER
	RET

// func widenF16(dst *float32, src *byte, n int)
TEXT ·widenF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ wf_done
wf_loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ wf_loop
wf_done:
	VZEROUPPER
	RET

// func widenAddF16(dst *float32, src *byte, n int)
TEXT ·widenAddF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ waf_done
waf_loop:
	VCVTPH2PS (SI), Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ waf_loop
waf_done:
	VZEROUPPER
	RET

// BF16CONSTS loads the constants of BF16ROUND.
#define BF16CONSTS \
	MOVL $0x7fff, AX; \
	VMOVD AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL $1, AX; \
	VMOVD AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVL $0x7fffffff, AX; \
	VMOVD AX, X13; \
	VPBROADCASTD X13, Y13; \
	MOVL $0x7f800000, AX; \
	VMOVD AX, X12; \
	VPBROADCASTD X12, Y12; \
	MOVL $0x40, AX; \
	VMOVD AX, X11; \
	VPBROADCASTD X11, Y11

// BF16ROUND leaves in Y3 the bfloat16s (in the low half of each lane) of
// the eight float32s in Y0, as toBFloat16 computes them: the upper half
// after adding 0x7fff and the parity of the result's last bit, or for a
// NaN its upper half with the quiet bit set.
#define BF16ROUND \
	VPSRLD $16, Y0, Y1; \
	VPAND Y14, Y1, Y2; \
	VPADDD Y15, Y0, Y3; \
	VPADDD Y2, Y3, Y3; \
	VPSRLD $16, Y3, Y3; \
	VPOR Y11, Y1, Y4; \
	VPAND Y13, Y0, Y5; \
	VPCMPGTD Y12, Y5, Y5; \
	VPBLENDVB Y5, Y4, Y3, Y3

// BF16STORE packs the eight bfloat16s of Y3 to (DI).
#define BF16STORE \
	VEXTRACTI128 $1, Y3, X6; \
	VPACKUSDW X6, X3, X6; \
	VMOVDQU X6, (DI)

// func narrowBF16(dst *byte, src *float32, n int)
TEXT ·narrowBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	BF16CONSTS
	SHRQ $3, CX
	JZ nb_done
nb_loop:
	VMOVDQU (SI), Y0
	BF16ROUND
	BF16STORE
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ nb_loop
nb_done:
	VZEROUPPER
	RET

// func narrowLostBF16(dst *byte, src, lost *float32, n int, scale float32)
TEXT ·narrowLostBF16(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lost+16(FP), BX
	MOVQ n+24(FP), CX
	LEAQ scale+32(FP), R9
	BF16CONSTS
	VXORPS Y10, Y10, Y10
	SHRQ $3, CX
	JZ nlb_done
nlb_loop:
	VMOVDQU (SI), Y0
	BF16ROUND
	VPSLLD $16, Y3, Y7
	BF16STORE
	LOST(nlb_kept)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ nlb_loop
nlb_done:
	VZEROUPPER
	RET

// func widenBF16(dst *float32, src *byte, n int)
TEXT ·widenBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ wb_done
wb_loop:
	VPMOVZXWD (SI), Y0
	VPSLLD $16, Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ wb_loop
wb_done:
	VZEROUPPER
	RET

// func widenAddBF16(dst *float32, src *byte, n int)
TEXT ·widenAddBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ wab_done
wab_loop:
	VPMOVZXWD (SI), Y0
	VPSLLD $16, Y0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ wab_loop
wab_done:
	VZEROUPPER
	RET
