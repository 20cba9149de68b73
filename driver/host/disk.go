package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/procfs/blockdevice"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// DiskConfig configures the "disk" driver. Its zero value reads /proc and
// /sys, reports whole disks only and skips loop and ram devices.
type DiskConfig struct {
	// ProcRoot is where the proc filesystem is mounted; default "/proc".
	ProcRoot string `json:"proc_root,omitempty"`
	// SysRoot is where sysfs is mounted; default "/sys". The driver tells
	// whole disks from partitions by the entries of SysRoot/block.
	SysRoot string `json:"sys_root,omitempty"`
	// Partitions also reports partitions (sda1, nvme0n1p2, ...).
	Partitions bool `json:"partitions,omitempty"`
	// ExcludePrefixes skips devices whose name starts with one of these.
	// When absent it is ["loop", "ram"]; an empty list skips nothing.
	ExcludePrefixes []string `json:"exclude_prefixes,omitempty"`
}

var (
	diskReadBytes  = desc{"disk", "disk.read.bytes", meter.Cumulative, "B"}
	diskWriteBytes = desc{"disk", "disk.write.bytes", meter.Cumulative, "B"}
	diskReadOps    = desc{"disk", "disk.read.ops", meter.Cumulative, ""}
	diskWriteOps   = desc{"disk", "disk.write.ops", meter.Cumulative, ""}
	diskIOTime     = desc{"disk", "disk.io.time", meter.Cumulative, "s"}
)

// sectorSize is the unit of the sector counts in /proc/diskstats, whatever
// the device's real sector size.
const sectorSize = 512

type diskDriver struct {
	file       *procFile
	sysBlock   string
	partitions bool
	exclude    []string

	// whole records, per device name seen, whether it is a whole disk
	// (listed in /sys/block). It is rebuilt when an unknown name shows up.
	whole  map[string]bool
	names  map[string]string // device names met, so a collection allocates none
	fields [][]byte
	out    []meter.Measurement
}

func newDisk(cfg driver.Config) (driver.Driver, error) {
	c := DiskConfig{ExcludePrefixes: []string{"loop", "ram"}}
	if err := decodeConfig("disk", cfg, &c); err != nil {
		return nil, err
	}
	proc := orDefault(c.ProcRoot, DefaultProcRoot)
	sys := orDefault(c.SysRoot, DefaultSysRoot)
	if _, err := openProc("disk", proc); err != nil {
		return nil, err
	}
	if _, err := blockdevice.NewFS(proc, sys); err != nil {
		return nil, errorfPath("disk", "sys_root", sys, err)
	}
	return &diskDriver{
		file:       newProcFile(procPath(proc, "diskstats")),
		names:      map[string]string{},
		sysBlock:   procPath(sys, "block"),
		partitions: c.Partitions,
		exclude:    c.ExcludePrefixes,
		whole:      map[string]bool{},
	}, nil
}

// Collect reads /proc/diskstats.
func (d *diskDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := d.file.read()
	if err != nil {
		return nil, readErr("disk", d.file.path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	out := d.out[:0]
	for line := range bytes.Lines(b) {
		// major minor name reads merged sectors ms writes merged sectors ms
		// in-flight io-ms ...
		d.fields = fields(d.fields, line)
		if len(d.fields) < 14 {
			d.out = out
			return out, fmt.Errorf("host: disk: %s: too few fields in %q", d.file.path, bytes.TrimSpace(line))
		}
		var v [5]uint64 // reads, sectors read, writes, sectors written, io ms
		for i, f := range [...]int{3, 5, 7, 9, 12} {
			n, ok := parseUint(d.fields[f])
			if !ok {
				d.out = out
				return out, fmt.Errorf("host: disk: %s: cannot parse %q", d.file.path, bytes.TrimSpace(line))
			}
			v[i] = n
		}
		name, ok := d.names[string(d.fields[2])]
		if !ok {
			if len(d.names) >= maxNames { // devices come and go: forget them all now and then
				clear(d.names)
			}
			name = string(d.fields[2])
			d.names[name] = name
		}
		if d.excluded(name) {
			continue
		}
		if !d.partitions {
			whole, err := d.isWhole(name)
			if err != nil {
				d.out = out
				return out, readErr("disk", d.sysBlock, err)
			}
			if !whole {
				continue
			}
		}
		out = append(out,
			diskReadBytes.m(now, name, float64(v[1]*sectorSize), nil),
			diskWriteBytes.m(now, name, float64(v[3]*sectorSize), nil),
			diskReadOps.m(now, name, float64(v[0]), nil),
			diskWriteOps.m(now, name, float64(v[2]), nil),
			diskIOTime.m(now, name, float64(v[4])/1000, nil),
		)
	}
	d.out = out
	return out, nil
}

func (d *diskDriver) excluded(name string) bool {
	for _, p := range d.exclude {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// isWhole reports whether name is a whole disk rather than a partition.
// It lists /sys/block again only when it meets a name it has not seen.
func (d *diskDriver) isWhole(name string) (bool, error) {
	if w, ok := d.whole[name]; ok {
		return w, nil
	}
	entries, err := os.ReadDir(d.sysBlock)
	if err != nil {
		return false, err
	}
	for k := range d.whole {
		d.whole[k] = false
	}
	for _, e := range entries {
		d.whole[e.Name()] = true
	}
	if _, ok := d.whole[name]; !ok {
		d.whole[name] = false
	}
	return d.whole[name], nil
}
