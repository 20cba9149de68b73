//go:build unix

package publisherconfig

import "golang.org/x/sys/unix"

// writableDir reports whether this process may create a file in dir, as
// access(2) sees it: write and search permission, for the real user and
// group ids (the service's user). For root it passes whatever the mode
// bits say (root may write anywhere), but not on a read-only file system.
func writableDir(dir string) error { return unix.Access(dir, unix.W_OK|unix.X_OK) }
