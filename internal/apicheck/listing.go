package apicheck

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReadListing reads the *.txt files of dir, keyed by file name, one entry
// per non-empty line. A missing dir reads as an empty listing.
func ReadListing(dir string) (map[string][]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("apicheck: %w", err)
	}
	out := map[string][]string{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("apicheck: %w", err)
		}
		var lines []string
		for l := range strings.Lines(string(b)) {
			if l = strings.TrimRight(l, "\r\n"); l != "" {
				lines = append(lines, l)
			}
		}
		out[filepath.Base(name)] = lines
	}
	return out, nil
}

// WriteListing makes the *.txt files of dir hold listing exactly: it writes
// each file (one line each, newline-terminated) and removes the *.txt files
// that listing lacks. Other files in dir are left alone.
func WriteListing(dir string, listing map[string][]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("apicheck: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return fmt.Errorf("apicheck: %w", err)
	}
	for _, name := range old {
		if _, keep := listing[filepath.Base(name)]; !keep {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("apicheck: %w", err)
			}
		}
	}
	for name, lines := range listing {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("apicheck: %w", err)
		}
	}
	return nil
}

// DiffListing returns the lines that got adds to want ("+") and removes from
// it ("-"), grouped by file under the file's name prefixed with dir; it is
// empty when they agree.
func DiffListing(dir string, want, got map[string][]string) string {
	var b strings.Builder
	files := slices.Sorted(maps.Keys(want))
	for f := range maps.Keys(got) {
		if _, ok := want[f]; !ok {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	for _, f := range files {
		w, g := set(want[f]), set(got[f])
		var ds []string
		for l := range w {
			if !g[l] {
				ds = append(ds, "-"+l)
			}
		}
		for l := range g {
			if !w[l] {
				ds = append(ds, "+"+l)
			}
		}
		if len(ds) == 0 {
			if !slices.Equal(want[f], got[f]) {
				fmt.Fprintf(&b, "%s: the same lines, but not sorted or with duplicates\n", filepath.Join(dir, f))
			}
			continue
		}
		// Sorted by line, a changed signature reads as its - and + next to each other.
		slices.SortFunc(ds, func(a, b string) int {
			if c := strings.Compare(a[1:], b[1:]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		fmt.Fprintf(&b, "%s:\n", filepath.Join(dir, f))
		for _, d := range ds {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	return b.String()
}

func set(lines []string) map[string]bool {
	m := make(map[string]bool, len(lines))
	for _, l := range lines {
		m[l] = true
	}
	return m
}
