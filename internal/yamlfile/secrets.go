package yamlfile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/meterkit/meter"
)

// Secret files: a part whose settings name a file of their own (a key
// ending in _file, such as community_file or password_file) reads it when
// opened, so a reload must see a change to the file's content as a change
// to the part's settings. SecretsDigest and URLSecretsDigest summarise
// those contents, to be taken when the configuration is read and compared
// by the reload.

// SecretsDigest returns a digest of the contents of the files that cfg
// names under keys ending in "_file", at any depth (basic_auth.password_file
// too), each with its key: it differs from an earlier one when a file was
// rewritten (a rotated secret), another file named, or a file's mode
// changed or it became unreadable. It is "" when cfg names no file. Paths are read as the
// part reads them, relative to the working directory.
func SecretsDigest(cfg meter.Config) string {
	if cfg.IsZero() {
		return ""
	}
	b, err := cfg.MarshalJSON()
	if err != nil {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return ""
	}
	var files [][2]string // key path, file path
	collectFiles(v, "", &files)
	return digestFiles(files)
}

func collectFiles(v any, prefix string, out *[][2]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			key := Join(prefix, k)
			if s, ok := e.(string); ok && strings.HasSuffix(k, "_file") && s != "" {
				*out = append(*out, [2]string{key, s})
				continue
			}
			collectFiles(e, key, out)
		}
	case []any:
		for _, e := range v {
			collectFiles(e, prefix+"[]", out)
		}
	}
}

// URLSecretsDigest is SecretsDigest for a sink's URL: the files named by
// its query parameters ending in "_file" (password_file=, clouds_file=),
// but for those in skip, which the part reads again by itself when they
// change.
func URLSecretsDigest(raw string, skip []string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	var files [][2]string
	for k, vs := range u.Query() {
		if !strings.HasSuffix(k, "_file") || slices.Contains(skip, k) {
			continue
		}
		for _, p := range vs {
			if p != "" {
				files = append(files, [2]string{k, p})
			}
		}
	}
	return digestFiles(files)
}

// digestFiles hashes each key, path and the file's content (or the error
// reading it), in the order of the keys.
func digestFiles(files [][2]string) string {
	if len(files) == 0 {
		return ""
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i][0] != files[j][0] {
			return files[i][0] < files[j][0]
		}
		return files[i][1] < files[j][1]
	})
	h := sha256.New()
	for _, f := range files {
		field(h, f[0])
		field(h, f[1])
		hashFile(h, f[1])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func field(h hash.Hash, s string) {
	_, _ = io.WriteString(h, s)
	_, _ = h.Write([]byte{0})
}

// hashFile writes the file's mode (a secret file made readable by others
// is refused when read again) and content into h, bounded (a larger file is
// read no further), or the error that reading it gave.
func hashFile(h hash.Hash, path string) {
	f, err := os.Open(path)
	if err != nil {
		field(h, "error: "+err.Error())
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		field(h, fi.Mode().String())
	}
	if _, err := io.Copy(h, io.LimitReader(f, maxSecretBytes)); err != nil {
		field(h, "error: "+err.Error())
		return
	}
	_, _ = h.Write([]byte{0})
}

// maxSecretBytes bounds what is hashed of one file: a secret, a
// clouds.yaml or a certificate, not a document.
const maxSecretBytes = 1 << 20
