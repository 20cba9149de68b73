package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Mistakes a new user makes on the command line are config errors (exit 2)
// that say what is wrong, before anything starts.
func TestCommandLineMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-sink", "127.0.0.1:5555"}, `"127.0.0.1:5555" has no scheme: write it as SCHEME://..., one of`},
		{[]string{"-sink", "localhost/metrics"}, `"localhost/metrics" has no scheme`},
		{[]string{"-listen", "inproc://meter"}, `-listen: "inproc://meter": inproc:// reaches only agents in the same process, and this publisher runs none`},
	} {
		code, _, stderr := runMain(t, append(tc.args, "-check")...)
		require.Equal(t, 2, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}
