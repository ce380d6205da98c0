package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// onSIGTERM returns a channel closed at the first SIGTERM, after calling
// note (when not nil), and a function that stops listening for it.
func onSIGTERM(note func()) (<-chan struct{}, func()) {
	got := make(chan struct{})
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		if _, ok := <-terms; ok {
			if note != nil {
				note()
			}
			close(got)
		}
	}()
	return got, func() {
		signal.Stop(terms)
		close(terms)
	}
}
