package host

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFields(t *testing.T) {
	var dst [][]byte
	dst = fields(dst, []byte("  8   0 sda\t1 2\n"))
	require.Equal(t, []string{"8", "0", "sda", "1", "2"}, strs(dst))
	require.Empty(t, fields(dst, []byte(" \n")))
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func TestParseMeminfo(t *testing.T) {
	mi, ok := parseMeminfo([]byte("MemTotal:       1000 kB\nMemFree:  10 kB\nHugePages_Total:   0\nSwapTotal: 7\n"))
	require.True(t, ok)
	require.Equal(t, uint64(1000*1024), mi.total)
	require.Equal(t, uint64(10*1024), mi.free)
	require.Equal(t, uint64(7), mi.swapTotal, "a value without unit is taken as it is")
	require.Equal(t, uint8(haveTotal|haveFree|haveSwapTotal), mi.have)
	_, ok = parseMeminfo([]byte("MemTotal: x kB\n"))
	require.False(t, ok)
}

// The file is read again from the start at each read, through one
// descriptor, and follows what the file holds now.
func TestProcFileRereads(t *testing.T) {
	p := t.TempDir() + "/f"
	require.NoError(t, os.WriteFile(p, []byte("one"), 0o644))
	f := newProcFile(p)
	defer f.close()
	b, err := f.read()
	require.NoError(t, err)
	require.Equal(t, "one", string(b))
	fd := f.fd
	require.NoError(t, os.WriteFile(p, []byte("two, longer than 4096 bytes? no, but it grows"), 0o644))
	b, err = f.read()
	require.NoError(t, err)
	require.Equal(t, "two, longer than 4096 bytes? no, but it grows", string(b))
	require.Equal(t, fd, f.fd, "one descriptor")
	require.NoError(t, os.Remove(p))
	f.close()
	_, err = f.read()
	require.ErrorIs(t, err, os.ErrNotExist)
}

// On a real /proc the mount table is parsed once and not again while no
// mount changes.
func TestMountTableParsedOnceWhileUnchanged(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc here:", err)
	}
	mt := newMountTable("/proc/self/mountinfo", "/")
	defer mt.file.close()
	ms, err := mt.get()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	require.Equal(t, uint64(1), mt.gen)
	for range 3 {
		_, err = mt.get()
		require.NoError(t, err)
	}
	require.Equal(t, uint64(1), mt.gen, "not parsed again")
	// A copy in a test tree cannot say it changed: read once.
	mt = newMountTable(fixtureProc+"/self/mountinfo", "/host")
	defer mt.file.close()
	ms, err = mt.get()
	require.NoError(t, err)
	require.Equal(t, "/mnt/my disk", ms[4].point)
	require.Equal(t, "/host/mnt/my disk", ms[4].path)
	require.Equal(t, `/mnt/my\040disk`, ms[4].raw)
	require.Equal(t, "ext4", ms[4].fstype)
	require.Equal(t, "/dev/vdc", ms[4].source)
}

// Every driver that keeps a descriptor open closes it, and Close may be
// called twice.
func TestDriversCloseTheirFiles(t *testing.T) {
	for _, name := range names {
		d := open(t, name, fixtureConfig(name))
		if fd, ok := d.(*fsDriver); ok {
			fd.statfs = func(string, *unix.Statfs_t) error { return nil }
		}
		collect(t, d)
		c, ok := d.(io.Closer)
		if name == "processes" {
			require.False(t, ok, "processes keeps nothing open")
			continue
		}
		require.True(t, ok, name)
		require.NoError(t, c.Close(), name)
		require.NoError(t, c.Close(), name)
		var f *procFile
		switch d := d.(type) {
		case *cpuDriver:
			f = d.file
		case *memoryDriver:
			f = d.file
		case *swapDriver:
			f = d.file
		case *loadDriver:
			f = d.file
		case *uptimeDriver:
			f = d.file
		case *diskDriver:
			f = d.file
		case *networkDriver:
			f = d.file
		case *fsDriver:
			f = d.table.file
		}
		require.Equal(t, -1, f.fd, name)
	}
}
