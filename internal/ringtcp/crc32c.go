package ringtcp

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c returns the CRC-32C (Castagnoli) checksum of p.
func crc32c(p []byte) uint32 { return crc32cUpdate(0, p) }
