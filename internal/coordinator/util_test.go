package coordinator

import (
	"context"
	"log/slog"
	"os"
)

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }

// warnLogger records the messages of warnings.
func warnLogger(into *[]string) *slog.Logger {
	return slog.New(&recordingHandler{into: into})
}

type recordingHandler struct{ into *[]string }

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	*h.into = append(*h.into, r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }
