package main

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// -check reads the files a sink's URL names, also those the sink reads
// only when it starts (the web sink's token_file=): missing or readable by
// others, they are config errors (exit 2); fixed, the check passes.
func TestCheckReadsTheFilesASinkNames(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "web.token")
	sinkURL := "web://127.0.0.1:7070?token_file=" + url.QueryEscape(token)

	code, _, stderr := runMain(t, "-sink", sinkURL, "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "token_file=: open "+token+": no such file or directory")

	require.NoError(t, os.WriteFile(token, []byte("s3cret\n"), 0o644))
	code, _, stderr = runMain(t, "-sink", sinkURL, "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "token_file=: secret file permissions too open: "+token+" has mode 0644")
	require.Contains(t, stderr, "chmod 600 "+token)

	require.NoError(t, os.Chmod(token, 0o600))
	code, stdout, stderr := runMain(t, "-sink", sinkURL, "-check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "flags: ok\n", stdout)

	// A clouds.yaml only has to be a file: OpenStack's tools read it at
	// any mode.
	code, _, stderr = runMain(t, "-sink", "gnocchi://?cloud=x&clouds_file="+url.QueryEscape(dir), "-check")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "clouds_file=: "+dir+" is not a regular file")
}
