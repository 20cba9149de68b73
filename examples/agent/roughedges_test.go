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
		{[]string{"-connect", "tcp://127.0.0.1:7711,,tcp://127.0.0.1:7712"}, `-connect: empty address in "tcp://127.0.0.1:7711,,tcp://127.0.0.1:7712" (entry 2 of 3)`},
		{[]string{"-connect", "tcp://127.0.0.1:7711,"}, "-connect: empty address"},
		{[]string{"-connect", "inproc://meter"}, `-connect: "inproc://meter": inproc:// reaches only a publisher in the same process`},
	} {
		code, _, stderr := runMain(t, append(tc.args, "-check")...)
		require.Equal(t, 2, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}
