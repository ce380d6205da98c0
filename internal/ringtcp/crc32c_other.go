//go:build !amd64

package ringtcp

import "hash/crc32"

// crc32cUpdate returns the CRC-32C checksum of the bytes whose checksum is
// crc followed by p.
func crc32cUpdate(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }
