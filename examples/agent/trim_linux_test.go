package main

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func rssKB(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no RssFile")
	return 0
}

// The executable's start-up pages leave the resident set, and the program
// runs on (its code is mapped again as it runs).
func TestReleaseStartupPages(t *testing.T) {
	before := rssKB(t)
	released, err := releaseStartupPages()
	require.NoError(t, err)
	after := rssKB(t)
	require.Positive(t, released)
	require.Less(t, after, before, "the executable's pages mapped fell (%d kB released)", released>>10)
	// Code and read-only data are read again from the file.
	require.Equal(t, "cpu,memory", strings.Join([]string{"cpu", "memory"}, ","))
	cfg, err := load("agent.yaml", flag.NewFlagSet("agent", flag.ContinueOnError))
	require.NoError(t, err)
	require.NoError(t, checkConfig(cfg, &strings.Builder{}))
	_, err = releaseStartupPages() // and again
	require.NoError(t, err)
}
