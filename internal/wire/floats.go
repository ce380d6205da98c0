// Package wire moves the bulky parts of a job over gRPC streams: model state
// and training shards cut into chunks of at most ChunkBytes, raw numbers as
// little-endian bytes. Receivers check every length and offset against what
// the header announced before using anything.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc64"
	"math"
)

// ChunkBytes bounds the payload of one chunk message.
const ChunkBytes = 1 << 20

// AppendFloats appends v to b as little-endian float64 values.
func AppendFloats(b []byte, v []float64) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// DecodeFloats writes the little-endian float64 values of b into v, which
// must hold len(b)/8 values.
func DecodeFloats(v []float64, b []byte) {
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// WeightsHash is the CRC-64 (ECMA) of the parameters as little-endian
// float64 bytes: cheap enough to compare replicas every few steps.
func WeightsHash(params []float64, scratch []byte) (uint64, []byte) {
	scratch = AppendFloats(scratch[:0], params)
	return crc64.Checksum(scratch, crcTable), scratch
}

// WeightsSHA256 is the SHA-256 of the parameters as little-endian float64
// bytes, in the model's canonical order (layer after layer, kernel before
// bias), as hex.
func WeightsSHA256(params []float64) string {
	sum := sha256.Sum256(AppendFloats(nil, params))
	return hex.EncodeToString(sum[:])
}

// WeightsHash32 is WeightsHash for a float32 model: the CRC-64 (ECMA) of
// its parameters as little-endian float32 bytes, the buffer it trains.
func WeightsHash32(params []float32, scratch []byte) (uint64, []byte) {
	scratch = scratch[:0]
	for _, x := range params {
		scratch = binary.LittleEndian.AppendUint32(scratch, math.Float32bits(x))
	}
	return crc64.Checksum(scratch, crcTable), scratch
}
