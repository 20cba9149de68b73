package stage_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meterkit/meter/stage"
)

// FuzzMetersMatch checks one pattern against a regular expression made
// from it the way fnmatch reads '*' and '?'.
func FuzzMetersMatch(f *testing.F) {
	for _, s := range [][2]string{{"disk.*", "disk.read"}, {"*.bytes", "x.bytes"}, {"a*b?c*", "aXXbYcZ"}, {"h?h?", "héhé"}, {"**a", "ba"}, {"a*a*a", "aaaa"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) { // names are valid UTF-8 (meter.Validate)
			return
		}
		if pattern == "" || strings.HasPrefix(pattern, "!") || strings.ContainsAny(pattern, "[]") {
			return
		}
		m, err := stage.CompileMeters(pattern)
		if err != nil {
			t.Fatal(err)
		}
		var re strings.Builder
		re.WriteString(`^(?s:`)
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString(`.*`)
			case '?':
				re.WriteString(`.`)
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(`)$`)
		want := regexp.MustCompile(re.String()).MatchString(name)
		if got := m.Match(name); got != want {
			t.Fatalf("pattern %q, name %q: Match %v, want %v", pattern, name, got, want)
		}
	})
}
