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
