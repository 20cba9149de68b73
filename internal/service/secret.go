package service

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretSize bounds a secret file: a password or token, not a document.
const MaxSecretSize = 64 << 10

// ErrSecretMode is wrapped by ReadSecret's error for a file that others
// than its owner may read or write.
var ErrSecretMode = errors.New("secret file permissions too open")

// ReadSecret reads a secret (a password, a token) from the file at path,
// refusing, as the tenant key files are refused, a file that is not regular
// or whose mode lets its group or others read or write it: the error names
// the mode found and the command that fixes it. Trailing white space (the
// newline an editor adds) is removed; an empty secret is an error.
func ReadSecret(path string) (string, error) {
	f, err := openSecret(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(b) > MaxSecretSize {
		return "", fmt.Errorf("secret file %s: over the limit of %d bytes", path, MaxSecretSize)
	}
	s := strings.TrimRight(string(b), " \t\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// CheckSecretFile checks, as ReadSecret does but without reading it, that
// path is a regular file that the program can open and that only its owner
// may read or write: for -check, about a file a part reads only later.
func CheckSecretFile(path string) error {
	f, err := openSecret(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// openSecret opens the secret file at path, refusing one that is not
// regular or that group or others may read or write.
func openSecret(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat() // the file opened, so that it cannot be swapped after the check
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("secret file %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("%w: %s has mode %04o, which lets group or others read or write it; run: chmod 600 %s",
			ErrSecretMode, path, perm, path)
	}
	return f, nil
}
