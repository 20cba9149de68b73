package host

import (
	"bytes"
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// The files of /proc read at every collection are read through a
// descriptor kept open and parsed in place: reading a proc file from
// offset 0 makes the kernel generate it anew, so a collection costs the
// reads alone, with no open, close or allocation (procfs's parsers made
// most of an idle agent's allocations). The mount table is read again
// only when the kernel says it changed (mountinfo.go).

// procFile is one file read again and again through one open descriptor.
// A failed open or read closes it; the next read opens it again.
type procFile struct {
	path string
	fd   int // -1: not open
	buf  []byte
}

func newProcFile(path string) *procFile { return &procFile{path: path, fd: -1} }

// open opens the file if it is not open.
func (f *procFile) open() error {
	if f.fd >= 0 {
		return nil
	}
	for {
		fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "open", Path: f.path, Err: err}
		}
		f.fd = fd
		return nil
	}
}

// read returns the file's content, valid until the next read.
func (f *procFile) read() ([]byte, error) {
	if err := f.open(); err != nil {
		return nil, err
	}
	b := f.buf[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, 4096)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Pread(f.fd, b[len(b):cap(b)], int64(len(b)))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			f.buf = b
			f.close()
			return nil, &fs.PathError{Op: "read", Path: f.path, Err: err}
		}
		if n == 0 {
			break
		}
		b = b[:len(b)+n]
	}
	f.buf = b
	return b, nil
}

func (f *procFile) close() {
	if f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
	}
}

// fields splits line at runs of spaces and tabs into dst, reusing it.
func fields(dst [][]byte, line []byte) [][]byte {
	dst = dst[:0]
	for {
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n') {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			return dst
		}
		j := 0
		for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\n' {
			j++
		}
		dst = append(dst, line[:j])
		line = line[j:]
	}
}

// meminfo holds the lines of /proc/meminfo the drivers use, in bytes;
// have tells which were present.
type meminfo struct {
	total, free, available, buffers, cached, swapTotal, swapFree uint64
	have                                                         uint8
}

const (
	haveTotal = 1 << iota
	haveFree
	haveAvailable
	haveSwapTotal
	haveSwapFree
)

// parseMeminfo reads "Key:   value kB" lines; values without a unit are
// taken as they are.
func parseMeminfo(b []byte) (meminfo, bool) {
	var mi meminfo
	for line := range bytes.Lines(b) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		var bit uint8
		switch string(key) {
		case "MemTotal":
			dst, bit = &mi.total, haveTotal
		case "MemFree":
			dst, bit = &mi.free, haveFree
		case "MemAvailable":
			dst, bit = &mi.available, haveAvailable
		case "Buffers":
			dst = &mi.buffers
		case "Cached":
			dst = &mi.cached
		case "SwapTotal":
			dst, bit = &mi.swapTotal, haveSwapTotal
		case "SwapFree":
			dst, bit = &mi.swapFree, haveSwapFree
		default:
			continue
		}
		rest = bytes.TrimSpace(rest)
		num, unit, _ := bytes.Cut(rest, []byte(" "))
		v, ok := parseUint(num)
		if !ok {
			return mi, false
		}
		if string(bytes.TrimSpace(unit)) == "kB" {
			v *= 1024
		}
		*dst = v
		mi.have |= bit
	}
	return mi, true
}

// Close closes the descriptor the driver keeps open on /proc. (Each host
// driver that reads through a procFile is an io.Closer: the agent's
// owner closes drivers it stops using, such as on a reload.)
func (d *cpuDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/meminfo.
func (d *memoryDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/meminfo.
func (d *swapDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/loadavg.
func (d *loadDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/uptime.
func (d *uptimeDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/diskstats.
func (d *diskDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on /proc/net/dev.
func (d *networkDriver) Close() error { d.file.close(); return nil }

// Close closes the descriptor kept open on the mount table.
func (d *fsDriver) Close() error { d.table.file.close(); return nil }
