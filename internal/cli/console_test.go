package cli

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// screen interprets what a terminal is sent: "\r" returns to the start of
// the line, "\033[K" clears to its end, "\n" starts a new line.
func screen(out []byte) []string {
	lines := []string{""}
	col := 0
	for i := 0; i < len(out); i++ {
		cur := []rune(lines[len(lines)-1])
		switch {
		case out[i] == '\r':
			col = 0
		case bytes.HasPrefix(out[i:], []byte("\033[K")):
			lines[len(lines)-1] = string(cur[:min(col, len(cur))])
			i += 2
		case out[i] == '\n':
			lines, col = append(lines, ""), 0
		default:
			r := rune(out[i])
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			lines[len(lines)-1], col = string(cur), col+1
		}
	}
	return lines
}

// TestConsoleKeepsLinesWhole: log lines written while a progress line is
// drawn each land whole on a line of their own, even when they arrive in
// pieces; the progress line stays at the bottom, redrawn in place, until
// the progress display ends it with a line of its own.
func TestConsoleKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out)
	logs, progress := c.logs(), c.progress()
	fmt.Fprint(progress, "\r\033[Kepoch 1/1 [==        ] 2/10  loss 2.1000")
	fmt.Fprint(logs, "[local-1] level=INFO msg=")
	fmt.Fprint(logs, "joined\n")
	fmt.Fprint(progress, "\r\033[Kepoch 1/1 [=====     ] 5/10  loss 1.5000")
	fmt.Fprint(logs, "level=WARN msg=slow\n")
	got := screen(out.Bytes())
	want := []string{"[local-1] level=INFO msg=joined", "level=WARN msg=slow", "epoch 1/1 [=====     ] 5/10  loss 1.5000"}
	if !slices.Equal(got, want) {
		t.Fatalf("screen\n%q\nwant\n%q", got, want)
	}
	fmt.Fprint(progress, "\r\033[K")
	fmt.Fprint(progress, "epoch 1/1 done: test accuracy 0.9\n")
	fmt.Fprint(logs, "level=INFO msg=\"job complete\"\n")
	got = screen(out.Bytes())
	want = []string{"[local-1] level=INFO msg=joined", "level=WARN msg=slow", "epoch 1/1 done: test accuracy 0.9",
		"level=INFO msg=\"job complete\"", ""}
	if !slices.Equal(got, want) {
		t.Fatalf("screen\n%q\nwant\n%q", got, want)
	}
}

// TestConsoleConcurrentWriters: many writers at once never splice lines.
func TestConsoleConcurrentWriters(t *testing.T) {
	var out bytes.Buffer
	c := newConsole(&out)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				fmt.Fprintf(c.logs(), "writer %d line %d\n", w, i)
				fmt.Fprintf(c.progress(), "\r\033[Kprogress %d/%d", w, i)
			}
		}()
	}
	wg.Wait()
	lines := screen(out.Bytes())
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "writer ") || strings.Contains(l, "progress") {
			t.Fatalf("spliced line %q", l)
		}
	}
	if n := len(lines) - 1; n != 200 {
		t.Errorf("%d log lines, want 200", n)
	}
}
