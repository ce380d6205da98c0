package cli

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// console shares a terminal between a progress line that redraws in place
// and log lines (the coordinator's and its local workers'): a log line
// clears the progress line, is written whole on a line of its own, and the
// progress line is drawn again below it. It is safe for concurrent use.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	status []byte // the progress line on screen, without its newline
	logBuf []byte // the start of a log line not yet ended
}

// clearLine returns the cursor to the start of the line and clears it.
const clearLine = "\r\033[K"

func newConsole(w io.Writer) *console { return &console{w: w} }

// logs is where whole log lines go.
func (c *console) logs() io.Writer { return consoleLogs{c} }

// progress is where the progress display goes: text that ends without a
// newline is the progress line, redrawn in place; "\r" or "\r\033[K"
// starts it again; a newline makes it a line of its own.
func (c *console) progress() io.Writer { return consoleProgress{c} }

type consoleLogs struct{ c *console }

func (l consoleLogs) IsTerminal() bool { return true }

func (l consoleLogs) Write(b []byte) (int, error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logBuf = append(c.logBuf, b...)
	i := bytes.LastIndexByte(c.logBuf, '\n')
	if i < 0 {
		return len(b), nil
	}
	var out []byte
	if len(c.status) > 0 {
		out = append(out, clearLine...)
	}
	out = append(out, c.logBuf[:i+1]...)
	out = append(out, c.status...)
	c.logBuf = append(c.logBuf[:0], c.logBuf[i+1:]...)
	_, err := c.w.Write(out)
	return len(b), err
}

type consoleProgress struct{ c *console }

func (p consoleProgress) IsTerminal() bool { return true }

func (p consoleProgress) Write(b []byte) (int, error) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []byte
	status := c.status
	for rest := b; len(rest) > 0; {
		switch {
		case bytes.HasPrefix(rest, []byte(clearLine)):
			status, rest = nil, rest[len(clearLine):]
		case rest[0] == '\r':
			status, rest = nil, rest[1:]
		default:
			end := bytes.IndexAny(rest, "\r\n")
			if end < 0 {
				status, rest = append(status, rest...), nil
				continue
			}
			status = append(status, rest[:end]...)
			if rest[end] == '\n' {
				lines = append(append(lines, status...), '\n')
				status, end = nil, end+1
			}
			rest = rest[end:]
		}
	}
	out := append([]byte(clearLine), lines...)
	out = append(out, status...)
	c.status = append(c.status[:0:0], status...)
	_, err := c.w.Write(out)
	return len(b), err
}

// isTerminal reports whether w is a terminal: a character device, or a
// writer that says it is one (a console's).
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return true
		}
	}
	return false
}
