package ringtcp

import (
	"encoding/binary"
	"fmt"
	"io"

	"ringtrain/internal/allreduce"
)

// A frame on the wire is a 48-byte header followed by its payload:
//
//	 0  u64 number of the frame on its connection, from 0
//	 8  u64 step
//	16  u64 length of the vector
//	24  u32 seq
//	28  u32 payload bytes
//	32  i32 origin of an abort
//	36  u8  kind
//	37  u8  flags (flagAbort: the payload is the reason)
//	38  u16 zero
//	40  u32 CRC-32C of the payload
//	44  u32 CRC-32C of bytes 0–43
//
// all little-endian. The header's own checksum catches a corrupted length
// before it is trusted; the running frame number catches a lost, repeated
// or reordered frame whatever the collective's own sequence says.
const headerLen = 48

const flagAbort = 1

// header is a decoded frame header.
type header struct {
	number, step, length uint64
	seq, payload         uint32
	origin               int32
	kind, flags          uint8
	payloadCRC           uint32
}

// put encodes h into b, computing the header checksum.
func (h *header) put(b *[headerLen]byte) {
	binary.LittleEndian.PutUint64(b[0:], h.number)
	binary.LittleEndian.PutUint64(b[8:], h.step)
	binary.LittleEndian.PutUint64(b[16:], h.length)
	binary.LittleEndian.PutUint32(b[24:], h.seq)
	binary.LittleEndian.PutUint32(b[28:], h.payload)
	binary.LittleEndian.PutUint32(b[32:], uint32(h.origin))
	b[36], b[37], b[38], b[39] = h.kind, h.flags, 0, 0
	binary.LittleEndian.PutUint32(b[40:], h.payloadCRC)
	binary.LittleEndian.PutUint32(b[44:], crc32c(b[:44]))
}

// parse decodes b into h, checking the header checksum.
func (h *header) parse(b *[headerLen]byte) error {
	if got, want := crc32c(b[:44]), binary.LittleEndian.Uint32(b[44:]); got != want {
		return fmt.Errorf("%w: frame header failed its CRC-32C check", ErrCorrupt)
	}
	if b[38] != 0 || b[39] != 0 {
		return fmt.Errorf("%w: frame header has reserved bytes %#x %#x", ErrCorrupt, b[38], b[39])
	}
	h.number = binary.LittleEndian.Uint64(b[0:])
	h.step = binary.LittleEndian.Uint64(b[8:])
	h.length = binary.LittleEndian.Uint64(b[16:])
	h.seq = binary.LittleEndian.Uint32(b[24:])
	h.payload = binary.LittleEndian.Uint32(b[28:])
	h.origin = int32(binary.LittleEndian.Uint32(b[32:]))
	h.kind, h.flags = b[36], b[37]
	h.payloadCRC = binary.LittleEndian.Uint32(b[40:])
	return nil
}

// checksum is the CRC-32C of the concatenation of parts.
func checksum(parts [][]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32cUpdate(c, p)
	}
	return c
}

// frameHeader describes f as the frame numbered number.
func frameHeader(f *allreduce.Frame, number uint64) (header, [][]byte) {
	h := header{number: number, step: f.Step, length: f.Length, seq: f.Seq, kind: uint8(f.Kind), origin: int32(f.Origin)}
	payload := f.Data
	if f.Abort != "" {
		h.flags = flagAbort
		payload = [][]byte{[]byte(f.Abort)}
	}
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	h.payload = uint32(n)
	h.payloadCRC = checksum(payload)
	return h, payload
}

// readFrame reads the next frame from r into f, its payload into dst if
// it is data of exactly len(dst) bytes, else into *buf (grown as needed,
// up to maxPayload bytes), and checks it: want is the number the frame
// must carry.
func readFrame(r io.Reader, hdr *[headerLen]byte, buf *[]byte, dst []byte, want uint64, maxPayload int, f *allreduce.Frame) error {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: the connection ended inside a frame header", ErrTruncated)
		}
		return err
	}
	var h header
	if err := h.parse(hdr); err != nil {
		return err
	}
	if h.number != want {
		return fmt.Errorf("%w: frame number %d arrived where %d was due", ErrOutOfOrder, h.number, want)
	}
	if int64(h.payload) > int64(maxPayload) {
		return fmt.Errorf("%w: frame %d announces %d payload bytes, the limit is %d", ErrOversized, h.number, h.payload, maxPayload)
	}
	if h.flags&^flagAbort != 0 {
		return fmt.Errorf("%w: frame %d has unknown flags %#x", ErrCorrupt, h.number, h.flags)
	}
	var p []byte
	if h.flags == 0 && len(dst) > 0 && int64(h.payload) == int64(len(dst)) {
		p = dst
	} else {
		if cap(*buf) < int(h.payload) {
			*buf = make([]byte, h.payload)
		}
		p = (*buf)[:h.payload]
	}
	if n, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: the connection ended after %d of frame %d's %d payload bytes", ErrTruncated, n, h.number, h.payload)
		}
		return err
	}
	if got := crc32c(p); got != h.payloadCRC {
		return fmt.Errorf("%w: frame %d (step %d, seq %d) failed its payload CRC-32C check", ErrCorrupt, h.number, h.step, h.seq)
	}
	*f = allreduce.Frame{Step: h.step, Seq: h.seq, Length: h.length, Kind: allreduce.Kind(h.kind), Origin: int(h.origin)}
	if h.flags&flagAbort != 0 {
		f.Abort = string(p)
		if f.Abort == "" {
			f.Abort = "no reason given"
		}
		return nil
	}
	if len(p) > 0 {
		f.Data = [][]byte{p}
	}
	return nil
}
