package console_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink/console"
)

// The option convention: the zero value of an option means the default,
// and an invalid one is an error from New (and Create) that names the option.
func TestOptionConvention(t *testing.T) {
	m := []meter.Measurement{{Name: "n", Kind: meter.Gauge, Value: 1, Time: time.Date(2026, 11, 21, 10, 0, 0, 5, time.UTC)}}
	for _, tc := range []struct {
		name string
		opts []console.Option
		want string // the line written, or the whole error text
		err  bool
	}{
		{name: "no options", want: "2026-11-21T10:00:00.000000005Z - n 1 gauge\n"},
		{name: "zero format and layout", opts: []console.Option{
			console.WithFormat(console.JSON), console.WithFormat(0), console.WithTimeFormat(time.Kitchen), console.WithTimeFormat(""),
		}, want: "2026-11-21T10:00:00.000000005Z - n 1 gauge\n"},
		{name: "set", opts: []console.Option{console.WithTimeFormat(time.Kitchen)}, want: "10:00AM - n 1 gauge\n"},
		{name: "json", opts: []console.Option{console.WithFormat(console.JSON)}, want: `{"name":"n","kind":"gauge","value":1,"time":"2026-11-21T10:00:00.000000005Z"}` + "\n"},
		{name: "unknown format", opts: []console.Option{console.WithFormat(7)}, err: true,
			want: "console: WithFormat: unknown format 7 (want Text or JSON)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s, err := console.New(&buf, tc.opts...)
			path := filepath.Join(t.TempDir(), "out")
			f, ferr := console.Create(path, tc.opts...)
			if tc.err {
				require.EqualError(t, err, tc.want)
				require.EqualError(t, ferr, tc.want)
				require.NoFileExists(t, path, "Create checks the options first")
				return
			}
			require.NoError(t, err)
			require.NoError(t, ferr)
			require.NoError(t, f.Close(context.Background()))
			require.NoError(t, s.Write(context.Background(), m))
			require.Equal(t, tc.want, buf.String())
		})
	}
}
