package ringtcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// hello is the first message of a ring connection, from the dialing
// (left-hand) rank.
type hello struct {
	job        string
	generation uint32
	from, size int32
	token      string
}

// maxHelloString bounds the job id and the token.
const maxHelloString = 4096

func (h *hello) write(w io.Writer) error {
	if len(h.job) > maxHelloString || len(h.token) > maxHelloString {
		return errors.New("job id or token too long")
	}
	b := make([]byte, 0, 16+len(h.job)+len(h.token))
	b = binary.LittleEndian.AppendUint32(b, h.generation)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.from))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.size))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.job)))
	b = append(b, h.job...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.token)))
	b = append(b, h.token...)
	_, err := w.Write(b)
	return err
}

func (h *hello) read(r io.Reader) error {
	var fixed [12]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	h.generation = binary.LittleEndian.Uint32(fixed[0:])
	h.from = int32(binary.LittleEndian.Uint32(fixed[4:]))
	h.size = int32(binary.LittleEndian.Uint32(fixed[8:]))
	var err error
	if h.job, err = readString(r); err != nil {
		return fmt.Errorf("read hello's job id: %w", err)
	}
	if h.token, err = readString(r); err != nil {
		return fmt.Errorf("read hello's token: %w", err)
	}
	return nil
}

func readString(r io.Reader) (string, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	l := int(binary.LittleEndian.Uint16(n[:]))
	if l > maxHelloString {
		return "", fmt.Errorf("%d bytes, more than %d", l, maxHelloString)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// The messages an accepting rank sends back on the connection.
const (
	replyAccepted = 1 // the connection joined the ring
	replyRefused  = 2 // the text says why
	replyGoodbye  = 3 // the accepting rank left the ring; the text says why
)

func writeReply(w io.Writer, kind byte, text string) error {
	if len(text) > maxHelloString {
		text = text[:maxHelloString]
	}
	b := append([]byte{kind}, byte(len(text)), byte(len(text)>>8))
	_, err := w.Write(append(b, text...))
	return err
}

func readReply(r io.Reader) (kind byte, text string, err error) {
	var k [1]byte
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return 0, "", err
	}
	text, err = readString(r)
	return k[0], text, err
}
