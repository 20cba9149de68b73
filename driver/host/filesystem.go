package host

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// FilesystemConfig configures the "filesystem" driver. Its zero value reads
// the mount table from /proc/self/mountinfo, calls statfs(2) on each mount
// point under "/", and skips pseudo filesystems and tmpfs.
type FilesystemConfig struct {
	// ProcRoot is where the proc filesystem is mounted; default "/proc".
	// The mount table is ProcRoot/self/mountinfo.
	ProcRoot string `json:"proc_root,omitempty"`
	// Root is prefixed to every mount point before statfs(2); default "/".
	// Set it to where the host's root is mounted when the agent runs in a
	// container. ResourceID stays the mount point as the table names it.
	Root string `json:"root,omitempty"`
	// IncludeTmpfs also reports tmpfs mounts (skipped by default).
	IncludeTmpfs bool `json:"include_tmpfs,omitempty"`
	// ExcludeFSTypes skips these filesystem types in addition to the pseudo
	// filesystems always skipped, e.g. ["overlay", "nfs", "nfs4"].
	ExcludeFSTypes []string `json:"exclude_fstypes,omitempty"`
}

var (
	fsSize        = desc{"filesystem", "filesystem.size", meter.Gauge, "B"}
	fsUsed        = desc{"filesystem", "filesystem.used", meter.Gauge, "B"}
	fsAvailable   = desc{"filesystem", "filesystem.available", meter.Gauge, "B"}
	fsInodesTotal = desc{"filesystem", "filesystem.inodes.total", meter.Gauge, ""}
	fsInodesUsed  = desc{"filesystem", "filesystem.inodes.used", meter.Gauge, ""}
	fsInodesFree  = desc{"filesystem", "filesystem.inodes.free", meter.Gauge, ""}
)

// pseudoFSTypes hold no files of their own: kernel interfaces, views of
// other filesystems, automounter placeholders and read-only images that are
// always full. overlay is not among them: it is the root filesystem of a
// container, and its numbers are those of the filesystem under it.
var pseudoFSTypes = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
	"devpts", "devtmpfs", "efivarfs", "fuse.lxcfs", "fusectl", "hugetlbfs",
	"mqueue", "nsfs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs",
	"selinuxfs", "squashfs", "sysfs", "tracefs",
}

type fsDriver struct {
	table   *mountTable
	exclude []string
	statfs  func(path string, st *unix.Statfs_t) error

	keep    []bool               // which mounts of the table to report
	keepGen uint64               // the table's generation keep was made for
	seen    map[string]struct{}  // reused: mount points met, newest first
	labels  map[string]*fsLabels // per mount point, kept while mounted
	gen     uint64               // collection number, to drop unmounted entries
	out     []meter.Measurement
}

// fsLabels caches one mount's labels, so a collection allocates none.
type fsLabels struct {
	fstype, device string
	labels         []meter.Label
	gen            uint64
}

func newFilesystem(cfg driver.Config) (driver.Driver, error) {
	var c FilesystemConfig
	if err := decodeConfig("filesystem", cfg, &c); err != nil {
		return nil, err
	}
	proc := orDefault(c.ProcRoot, DefaultProcRoot)
	if _, err := openProc("filesystem", proc); err != nil {
		return nil, err
	}
	exclude := slices.Concat(pseudoFSTypes, c.ExcludeFSTypes)
	if !c.IncludeTmpfs {
		exclude = append(exclude, "tmpfs")
	}
	return &fsDriver{
		table:   newMountTable(procPath(proc, "self/mountinfo"), orDefault(c.Root, DefaultRoot)),
		exclude: exclude,
		statfs:  unix.Statfs,
		seen:    map[string]struct{}{},
		labels:  map[string]*fsLabels{},
	}, nil
}

// Collect reads the mount table and calls statfs(2) once per mount point,
// checking ctx before each call. When a mount point is listed more than
// once, the last mount (the one visible) is reported. A failed statfs does
// not stop the collection: the other mounts are reported with the error.
//
// statfs on a hung network filesystem blocks in the kernel and cannot be
// interrupted; list such types in ExcludeFSTypes.
func (d *fsDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mounts, err := d.table.get()
	if err != nil {
		var perr *fs.PathError
		if errors.As(err, &perr) {
			return nil, readErr("filesystem", d.table.file.path, err)
		}
		return nil, err
	}
	if d.keepGen != d.table.gen {
		// Newest mount wins: walk backwards, keep the first of each point.
		d.keep = slices.Grow(d.keep[:0], len(mounts))[:len(mounts)]
		clear(d.seen)
		for i := len(mounts) - 1; i >= 0; i-- {
			mi := &mounts[i]
			_, dup := d.seen[mi.raw]
			d.keep[i] = !dup && !slices.Contains(d.exclude, mi.fstype) && len(mi.raw) <= meter.MaxIDLen
			d.seen[mi.raw] = struct{}{}
		}
		d.keepGen = d.table.gen
	}
	d.gen++
	now := time.Now()
	out := d.out[:0]
	var errs []error
	var st unix.Statfs_t
	for i := range mounts {
		mi := &mounts[i]
		if !d.keep[i] {
			continue
		}
		if err := ctx.Err(); err != nil {
			d.out = out
			return out, errors.Join(append(errs, err)...)
		}
		point := mi.point
		if err := d.statfs(mi.path, &st); err != nil {
			if !errors.Is(err, unix.ENOENT) { // unmounted since we read the table
				errs = append(errs, errorfPath("filesystem", "statfs", mi.path, err))
			}
			continue
		}
		if st.Blocks == 0 { // a pseudo filesystem not in our list
			continue
		}
		bsize := uint64(st.Frsize)
		if bsize == 0 {
			bsize = uint64(st.Bsize)
		}
		labels := d.labelsFor(point, mi.fstype, mi.source)
		out = append(out,
			fsSize.m(now, point, float64(st.Blocks*bsize), labels),
			fsUsed.m(now, point, float64((st.Blocks-min(st.Bfree, st.Blocks))*bsize), labels),
			fsAvailable.m(now, point, float64(st.Bavail*bsize), labels),
			fsInodesTotal.m(now, point, float64(st.Files), labels),
			fsInodesUsed.m(now, point, float64(st.Files-min(st.Ffree, st.Files)), labels),
			fsInodesFree.m(now, point, float64(st.Ffree), labels),
		)
	}
	for k, l := range d.labels {
		if l.gen != d.gen {
			delete(d.labels, k)
		}
	}
	d.out = out
	return out, errors.Join(errs...)
}

func (d *fsDriver) labelsFor(point, fstype, device string) []meter.Label {
	l := d.labels[point]
	if l == nil || l.fstype != fstype || l.device != device {
		if len(device) > meter.MaxLabelValueLen {
			device = device[:meter.MaxLabelValueLen]
		}
		l = &fsLabels{fstype: fstype, device: device, labels: []meter.Label{
			{Key: "fstype", Value: fstype},
			{Key: "device", Value: device},
		}}
		d.labels[point] = l
	}
	l.gen = d.gen
	return l.labels
}

// unescapeMount undoes the octal escapes (\040 for a space, \011, \012,
// \134) that the kernel writes in mount points.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
