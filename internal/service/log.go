package service

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LogLevels are the levels a log level setting accepts; "" is info.
var LogLevels = []string{"debug", "info", "warn", "error"}

// LogFormats are the formats a log format setting accepts; "" is text.
var LogFormats = []string{"text", "json"}

// ParseLevel parses a log level ("" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want %s)", s, strings.Join(LogLevels, ", "))
}

// CheckFormat checks a log format ("" is text).
func CheckFormat(s string) error {
	switch s {
	case "", "text", "json":
		return nil
	}
	return fmt.Errorf("unknown log format %q (want %s)", s, strings.Join(LogFormats, ", "))
}

// Logger returns a logger writing to w at level, in format (text or
// json). Both must have passed ParseLevel and CheckFormat: an unknown
// value gives info and text.
func Logger(w io.Writer, level, format string) *slog.Logger {
	lv, _ := ParseLevel(level)
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
