package coordinator

import (
	"fmt"
	"unicode/utf8"
)

// prefix returns at most the first 64 bytes of what a caller or a user
// sent, saying how long it was, for errors and logs: an error never echoes
// megabytes of input.
func prefix(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	return cut(s, most) + fmt.Sprintf("… (%d bytes)", len(s))
}

// cut returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func cut(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxErrorBytes bounds an error message that may quote the user's input.
const maxErrorBytes = 512

// clip shortens the message of an error that may quote the user's input to
// its first maxErrorBytes/2 and last maxErrorBytes/4 bytes (where the
// field and the reason usually are), keeping the error for errors.Is.
func clip(err error) error {
	if err == nil || len(err.Error()) <= maxErrorBytes {
		return err
	}
	return &clippedError{err}
}

type clippedError struct{ err error }

func (e *clippedError) Error() string {
	msg := e.err.Error()
	tail := msg[len(msg)-maxErrorBytes/4:]
	for tail != "" && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s … (%d bytes left out) … %s", cut(msg, maxErrorBytes/2), len(msg)-len(cut(msg, maxErrorBytes/2))-len(tail), tail)
}

func (e *clippedError) Unwrap() error { return e.err }
