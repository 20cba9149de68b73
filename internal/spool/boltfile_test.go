package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestOpenOnceAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := openFile(path, true, false)
	require.NoError(t, err)
	require.True(t, db.NoSync)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = openFile(path, false, false)
	require.EqualError(t, err, path+" is in use by another process")
	require.NoError(t, db.Close())
	db, err = openFile(path, false, false)
	require.NoError(t, err)
	require.False(t, db.NoSync)
	require.NoError(t, db.Close())

	_, err = openFile(filepath.Join(t.TempDir(), "missing", "x.db"), false, false)
	require.ErrorContains(t, err, "open ")
}

func TestLoadTurnsPanicsIntoErrors(t *testing.T) {
	require.NoError(t, load(func() error { return nil }))
	boom := errors.New("boom")
	require.ErrorIs(t, load(func() error { return boom }), boom)
	require.EqualError(t, load(func() error { panic("page 7: invalid") }), "damaged: page 7: invalid")
}

// A file whose pages were overwritten with garbage is an error to Load,
// whichever way bbolt notices: at Open or while reading.
func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := openFile(path, false, false)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 500 {
			if err := b.Put([]byte{byte(i >> 8), byte(i)}, make([]byte, 100)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	page := int64(os.Getpagesize())
	garbage := make([]byte, fi.Size()-2*page) // every page after the two meta pages
	for i := range garbage {
		garbage[i] = 0xA5
	}
	_, err = f.WriteAt(garbage, 2*page)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// bbolt panics at Open on the damaged freelist, keeping its lock on the
	// file: the second attempt works on a copy.
	copied := filepath.Join(t.TempDir(), "copy.db")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(copied, b, 0o600))
	_, err = openFile(copied, false, false)
	require.ErrorIs(t, err, ErrDamaged)
	require.ErrorContains(t, err, "move it away")
	err = load(func() error {
		db, err := openFile(path, false, true)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("b")).ForEach(func(_, _ []byte) error { return nil })
		})
	})
	require.ErrorIs(t, err, ErrDamaged)
}
