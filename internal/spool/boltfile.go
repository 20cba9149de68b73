package spool

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openFile opens (or makes, mode 0600) the bbolt file at path. Another process
// holding it is reported as such after a second, so that a second agent or
// publisher pointed at the same directory fails at once with a clear error.
// noSync leaves flushing to the operating system; readOnly opens the file
// for reading and shares it. A file too damaged to open is an error
// wrapping ErrDamaged; bbolt then keeps the file open and locked until the
// process exits, so the caller gives up rather than retries.
func openFile(path string, noSync, readOnly bool) (*bolt.DB, error) {
	var db *bolt.DB
	err := load(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync, ReadOnly: readOnly})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s is in use by another process", path)
	}
	if errors.Is(err, ErrDamaged) {
		return nil, fmt.Errorf("open %s (move it away to start afresh): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.NoSync = noSync
	return db, nil
}

// ErrDamaged is wrapped by the errors of files bbolt cannot read.
var ErrDamaged = errors.New("damaged")

// load runs fn, which reads db, and turns a panic of bbolt on damaged pages
// (a machine crash while the file was written without fsync) into an error.
func load(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}
