// The folding below is Go's hash/crc32 ieeeCLMUL (crc32_amd64.s, BSD
// licence, Copyright 2011 The Go Authors), after Intel's "Fast CRC
// Computation for Generic Polynomials Using PCLMULQDQ Instruction", with
// the constants of the Castagnoli polynomial (derived in crc32c_test.go).

#include "textflag.h"

// func crc32cCLMUL(crc uint32, p []byte, avx512 bool) uint32
// len(p) must be at least 64 and a multiple of 16; crc is not inverted.
TEXT ·crc32cCLMUL(SB), NOSPLIT, $0-44
	MOVL crc+0(FP), X0
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX

	CMPB avx512+32(FP), $1
	JNE  useSSE
	CMPQ CX, $1024
	JL   useSSE

	// Sixteen 128-bit lanes, in four registers, folded by 2048 bits at a
	// time (four chains, so that the multiplications' latency overlaps),
	// then folded into one register, which takes the last 64-byte blocks
	// 512 bits at a time.
	VPXORQ    Z10, Z10, Z10
	VMOVAPS   X0, X10
	VMOVDQU64 (SI), Z1
	VMOVDQU64 64(SI), Z2
	VMOVDQU64 128(SI), Z3
	VMOVDQU64 192(SI), Z4
	VPXORQ    Z10, Z1, Z1
	ADDQ      $256, SI
	SUBQ      $256, CX

	VMOVDQU64 r8r7<>+0(SB), Z0

loop256AVX512:
	VMOVDQU64  (SI), Z11
	VMOVDQU64  64(SI), Z12
	VMOVDQU64  128(SI), Z13
	VMOVDQU64  192(SI), Z14
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPCLMULQDQ $0x11, Z0, Z2, Z6
	VPCLMULQDQ $0, Z0, Z2, Z2
	VPCLMULQDQ $0x11, Z0, Z3, Z7
	VPCLMULQDQ $0, Z0, Z3, Z3
	VPCLMULQDQ $0x11, Z0, Z4, Z8
	VPCLMULQDQ $0, Z0, Z4, Z4
	VPTERNLOGD $0x96, Z11, Z5, Z1
	VPTERNLOGD $0x96, Z12, Z6, Z2
	VPTERNLOGD $0x96, Z13, Z7, Z3
	VPTERNLOGD $0x96, Z14, Z8, Z4

	ADDQ $256, SI
	SUBQ $256, CX
	CMPQ CX, $256
	JGE  loop256AVX512

	VMOVDQU64  r2r1<>+0(SB), Z0
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z2, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z3, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z4, Z5, Z1

	CMPQ CX, $64
	JL   fold512

loop64AVX512:
	VMOVDQU64  (SI), Z11
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z11, Z5, Z1

	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JGE  loop64AVX512

fold512:
	VEXTRACTF32X4 $1, Z1, X2
	VEXTRACTF32X4 $2, Z1, X3
	VEXTRACTF32X4 $3, Z1, X4
	VZEROUPPER
	JMP remain64

useSSE:
	MOVOU (SI), X1
	MOVOU 16(SI), X2
	MOVOU 32(SI), X3
	MOVOU 48(SI), X4
	PXOR  X0, X1
	ADDQ  $64, SI
	SUBQ  $64, CX
	CMPQ  CX, $64
	JB    remain64

	MOVOU r2r1<>+0(SB), X0

loop64:
	MOVOA X1, X5
	MOVOA X2, X6
	MOVOA X3, X7
	MOVOA X4, X8

	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0, X0, X2
	PCLMULQDQ $0, X0, X3
	PCLMULQDQ $0, X0, X4

	MOVOU (SI), X11
	MOVOU 16(SI), X12
	MOVOU 32(SI), X13
	MOVOU 48(SI), X14

	PCLMULQDQ $0x11, X0, X5
	PCLMULQDQ $0x11, X0, X6
	PCLMULQDQ $0x11, X0, X7
	PCLMULQDQ $0x11, X0, X8

	PXOR X5, X1
	PXOR X6, X2
	PXOR X7, X3
	PXOR X8, X4

	PXOR X11, X1
	PXOR X12, X2
	PXOR X13, X3
	PXOR X14, X4

	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JGE  loop64

	// Fold the four lanes into X1.
remain64:
	MOVOU r4r3<>+0(SB), X0

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X2, X1

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X3, X1

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X4, X1

	CMPQ CX, $16
	JB   finish

remain16:
	MOVOU     (SI), X10
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X10, X1
	SUBQ      $16, CX
	ADDQ      $16, SI
	CMPQ      CX, $16
	JGE       remain16

	// Fold 128 bits to 64, then Barrett-reduce to 32.
finish:
	PCMPEQB   X3, X3
	PCLMULQDQ $1, X1, X0
	PSRLDQ    $8, X1
	PXOR      X0, X1

	MOVOA X1, X2
	MOVQ  r5<>+0(SB), X0

	PSRLQ $32, X3

	PSRLDQ    $4, X2
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	MOVOU rupoly<>+0(SB), X0

	MOVOA     X1, X2
	PAND      X3, X1
	PCLMULQDQ $0x10, X0, X1
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	PEXTRD $1, X1, AX
	MOVL   AX, ret+40(FP)
	RET

// The constants (r8r7 and r2r1 four times, for the 512-bit registers):
// x^(16·128±32), x^(4·128±32), x^(128±32) and x^64 mod P, bit-reflected
// and shifted left by one; P itself and x^64 div P, reflected.
DATA r2r1<>+0(SB)/8, $0x740eef02
DATA r2r1<>+8(SB)/8, $0x9e4addf8
DATA r2r1<>+16(SB)/8, $0x740eef02
DATA r2r1<>+24(SB)/8, $0x9e4addf8
DATA r2r1<>+32(SB)/8, $0x740eef02
DATA r2r1<>+40(SB)/8, $0x9e4addf8
DATA r2r1<>+48(SB)/8, $0x740eef02
DATA r2r1<>+56(SB)/8, $0x9e4addf8
GLOBL r2r1<>(SB), RODATA, $64

DATA r8r7<>+0(SB)/8, $0xdcb17aa4
DATA r8r7<>+8(SB)/8, $0xb9e02b86
DATA r8r7<>+16(SB)/8, $0xdcb17aa4
DATA r8r7<>+24(SB)/8, $0xb9e02b86
DATA r8r7<>+32(SB)/8, $0xdcb17aa4
DATA r8r7<>+40(SB)/8, $0xb9e02b86
DATA r8r7<>+48(SB)/8, $0xdcb17aa4
DATA r8r7<>+56(SB)/8, $0xb9e02b86
GLOBL r8r7<>(SB), RODATA, $64

DATA r4r3<>+0(SB)/8, $0xf20c0dfe
DATA r4r3<>+8(SB)/8, $0x14cd00bd6
GLOBL r4r3<>(SB), RODATA, $16

DATA rupoly<>+0(SB)/8, $0x105ec76f1
DATA rupoly<>+8(SB)/8, $0xdea713f1
GLOBL rupoly<>(SB), RODATA, $16

DATA r5<>+0(SB)/8, $0xdd45aab8
GLOBL r5<>(SB), RODATA, $8
