package service

import (
	"fmt"
	"runtime/debug"
)

// Version describes the running binary in one line: the program's name, its
// main module's version ("(devel)" for a build from a checkout), the VCS
// revision and time it was built from (with "+dirty" for uncommitted
// changes) and the Go version, such as
//
//	meter-agent github.com/meterkit/meter v0.4.0 (rev 05041b0c9a1e, 2026-11-30T14:01:36Z) go1.26.0
func Version(program string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return program + " (no build information)"
	}
	return version(program, bi)
}

func version(program string, bi *debug.BuildInfo) string {
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	out := fmt.Sprintf("%s %s %s", program, bi.Main.Path, v)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " (rev " + rev + dirty
		if at != "" {
			out += ", " + at
		}
		out += ")"
	}
	return out + " " + bi.GoVersion
}
