// Package modelfile reads a job's model description: a JSON file in
// Keras's names (package nn parses and checks it), or the Keras MNIST
// example when none is given. Its errors name the file and never quote
// more than a short part of it, however large the file.
package modelfile

import (
	"fmt"
	"os"
	"unicode/utf8"

	"ringtrain/internal/nn"
)

// Load reads the model description at path, or returns the Keras MNIST
// example's when path is empty.
func Load(path string) (nn.Spec, error) {
	if path == "" {
		return nn.KerasMNIST(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nn.Spec{}, fmt.Errorf("model description: %w", err)
	}
	spec, err := nn.ParseSpec(data)
	if err != nil {
		// The error may quote the file: a short prefix is enough.
		return nn.Spec{}, fmt.Errorf("%s: %w", path, clip(err))
	}
	return spec, nil
}

// maxErrorBytes bounds an error message that may quote the file.
const maxErrorBytes = 512

// clip shortens the message of an error that may quote the file to its
// first maxErrorBytes/2 and last maxErrorBytes/4 bytes (where the field
// and the reason usually are), keeping the error for errors.Is.
func clip(err error) error {
	if len(err.Error()) <= maxErrorBytes {
		return err
	}
	return &clippedError{err}
}

type clippedError struct{ err error }

func (e *clippedError) Error() string {
	msg := e.err.Error()
	head := cut(msg, maxErrorBytes/2)
	tail := msg[len(msg)-maxErrorBytes/4:]
	for tail != "" && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s … (%d bytes left out) … %s", head, len(msg)-len(head)-len(tail), tail)
}

func (e *clippedError) Unwrap() error { return e.err }

// cut returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func cut(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
