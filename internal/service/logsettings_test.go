package service

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogSettings(t *testing.T) {
	def := LogSettings{Level: "info", Format: "text"}
	require.Equal(t, LogSettings{Level: "debug", Format: "text"}, def.Over(LogSettings{Level: "debug"}))
	require.Equal(t, LogSettings{Level: "info", Format: "json"}, def.Over(LogSettings{Format: "json"}))
	require.Equal(t, def, def.Over(LogSettings{}))

	at := func(key string, err error) error { return fmt.Errorf("%s: %w", key, err) }
	require.Empty(t, def.Check(at))
	errs := LogSettings{Level: "loud", Format: "xml"}.Check(at)
	require.Len(t, errs, 2)
	require.ErrorContains(t, errs[0], `log.level: unknown log level "loud"`)
	require.ErrorContains(t, errs[1], `log.format: unknown log format "xml"`)
}
