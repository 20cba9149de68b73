package host

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountTable is the parsed mount table (mountinfo), read again only when
// the kernel says it changed: poll(2) on an open mountinfo reports POLLPRI
// and POLLERR once a mount or an unmount happened since the last poll. A
// file that does not say so (a copy in a test tree) is read once.
type mountTable struct {
	file   *procFile
	root   string // prefixed to the mount points for statfs
	mounts []mount
	gen    uint64 // incremented at each parse
	valid  bool
	poll   [1]unix.PollFd
	fields [][]byte
}

// mount is one line of the table.
type mount struct {
	raw    string // the mount point as the table writes it (octal escapes)
	point  string // unescaped
	path   string // root joined with point: what statfs is called on
	fstype string
	source string
}

func newMountTable(path, root string) *mountTable {
	return &mountTable{file: newProcFile(path), root: root}
}

// get returns the table, reading it again if it changed.
func (t *mountTable) get() ([]mount, error) {
	if t.valid && !t.changed() {
		return t.mounts, nil
	}
	b, err := t.file.read()
	if err != nil {
		t.valid = false
		return nil, err
	}
	if err := t.parse(b); err != nil {
		t.valid = false
		return nil, err
	}
	t.valid = true
	t.gen++
	return t.mounts, nil
}

// changed polls the open file without waiting.
func (t *mountTable) changed() bool {
	if t.file.fd < 0 {
		return true
	}
	t.poll[0] = unix.PollFd{Fd: int32(t.file.fd), Events: unix.POLLPRI}
	for {
		n, err := unix.Poll(t.poll[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || n > 0 && t.poll[0].Revents&(unix.POLLPRI|unix.POLLERR|unix.POLLNVAL) != 0
	}
}

// parse reads mountinfo lines: "id parent major:minor root point options
// [optional...] - fstype source superoptions".
func (t *mountTable) parse(b []byte) error {
	t.mounts = t.mounts[:0]
	for line := range bytes.Lines(b) {
		t.fields = fields(t.fields, line)
		if len(t.fields) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(t.fields); i++ {
			if string(t.fields[i]) == "-" {
				sep = i
				break
			}
		}
		if len(t.fields) < 5 || sep < 0 || sep+1 >= len(t.fields) {
			return fmt.Errorf("host: filesystem: %s: malformed line %q", t.file.path, bytes.TrimSpace(line))
		}
		m := mount{raw: string(t.fields[4]), fstype: string(t.fields[sep+1])}
		if sep+2 < len(t.fields) {
			m.source = string(t.fields[sep+2])
		}
		m.point = unescapeMount(m.raw)
		m.path = filepath.Join(t.root, m.point)
		t.mounts = append(t.mounts, m)
	}
	return nil
}
