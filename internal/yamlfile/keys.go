package yamlfile

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// SchemaKeys lists the YAML keys of struct type t, dotted, a list's items
// as KEY[].SUB; a yaml.Node, a duration or a scalar is a leaf. The config
// packages check their key reference (docs/operating.md) against it.
func SchemaKeys(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out = append(out, key)
		switch {
		case ft == reflect.TypeFor[yaml.Node]() || ft == reflect.TypeFor[time.Duration]():
		case ft.Kind() == reflect.Struct:
			out = append(out[:len(out)-1], SchemaKeys(ft, key+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[yaml.Node]():
			out = append(out, SchemaKeys(ft.Elem(), key+"[].")...)
		}
	}
	return out
}

// DocKeys reads the keys (the `code` spans) in the first column of the
// table under heading, a line of its own, in the markdown file at path.
func DocKeys(path, heading string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		return nil, fmt.Errorf("%s: no heading %q", path, heading)
	}
	if i := strings.Index(after, "\n#"); i >= 0 {
		after = after[:i]
	}
	var keys []string
	for line := range strings.SplitSeq(after, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range codeSpan().FindAllStringSubmatch(cells[1], -1) {
			keys = append(keys, m[1])
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key table under %q", path, heading)
	}
	return keys, nil
}

var codeSpan = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("`([^`]+)`") })

// UncommentSettings returns a sample config file with its settings that are
// commented out ("# id: web-01", "  #   ca: /etc/..", "  # - name: switch-1")
// uncommented, prose and other comments left alone, and how many it
// uncommented: the config packages check that the result still decodes
// strictly, so that every setting a sample shows is a key of the schema.
func UncommentSettings(b []byte) ([]byte, int) {
	re := commentedSetting()
	return re.ReplaceAll(b, []byte("$1$2")), len(re.FindAll(b, -1))
}

var commentedSetting = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^( *)# ( *(?:- )?[a-z_]+:(?: .*)?)$`)
})
