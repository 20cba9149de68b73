//go:build !unix

package publisherconfig

// writableDir is not checked where access(2) is missing: the directory
// has only to exist.
func writableDir(string) error { return nil }
