package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseStartupPages takes the pages of the agent's own executable out of
// its page tables, once start-up is over: the code and read-only data that
// the init functions of every linked package, the flag and config parsing
// and the drivers' set-up touched, and that the kernel mapped in large
// runs around each touch. The pages stay in the page cache, shared and
// reclaimable; what the agent runs from then on is mapped again at its
// first use (a minor fault), so its resident set becomes what it uses.
//
// Only mappings of the executable that are not writable and hold no
// private copy of a page (Anonymous: 0 in smaps: nothing relocated or
// written) are released: for them, MADV_DONTNEED means "read it from the
// file again", which gives the same bytes.
func releaseStartupPages() (released uint64, err error) {
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		return 0, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	type mapping struct {
		lo, hi uint64
		rss    uint64
		ok     bool
	}
	var ms []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 { // a mapping's header
			lo, hi, _ := strings.Cut(f[0], "-")
			m := mapping{}
			m.lo, _ = strconv.ParseUint(lo, 16, 64)
			m.hi, _ = strconv.ParseUint(hi, 16, 64)
			ino, _ := strconv.ParseUint(f[4], 10, 64)
			maj, min, _ := strings.Cut(f[3], ":")
			dmaj, _ := strconv.ParseUint(maj, 16, 32)
			dmin, _ := strconv.ParseUint(min, 16, 32)
			sameFile := ino == exe.Ino && uint32(dmaj) == unix.Major(exe.Dev) && uint32(dmin) == unix.Minor(exe.Dev)
			m.ok = sameFile && f[1][1] != 'w' && f[1][3] == 'p' && m.hi > m.lo
			ms = append(ms, m)
			cur = &ms[len(ms)-1]
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Anonymous:":
			if f[1] != "0" {
				cur.ok = false
			}
		case "Rss:":
			cur.rss, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	for _, m := range ms {
		if !m.ok {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.lo), uintptr(m.hi-m.lo), unix.MADV_DONTNEED); e != 0 {
			return released, fmt.Errorf("madvise %x-%x: %w", m.lo, m.hi, e)
		}
		released += m.rss << 10
	}
	return released, nil
}
