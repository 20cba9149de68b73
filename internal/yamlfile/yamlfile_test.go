package yamlfile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type inner struct {
	Size int           `yaml:"size"`
	Age  time.Duration `yaml:"age"`
}

type outer struct {
	Name   string   `yaml:"name"`
	Batch  inner    `yaml:"batch"`
	Items  []inner  `yaml:"items"`
	Tags   []string `yaml:"tags"`
	NoTag  bool
	Hidden string `yaml:"-"`
}

func decode(t *testing.T, text string) error {
	t.Helper()
	f, err := Parse("f.yaml", []byte(text))
	require.NoError(t, err)
	var v outer
	return f.Decode(f.Root, "", &v)
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"name: a\nnmae: b\n", "f.yaml:2: nmae: unknown key"},
		{"batch:\n  size: 1\n  sise: 2\n", "f.yaml:3: batch.sise: unknown key"},
		{"items:\n  - size: 1\n  - {size: 2, agee: 1s}\n", "f.yaml:3: items[1].agee: unknown key"},
		{"batch: {size: 1, age: 3 days}\n", "f.yaml:1: batch.age: bad duration `3 days`"},
		{"batch:\n  size: many\n", "f.yaml:2: batch.size: want a whole number, got `many`"},
		{"name: [a]\n", "f.yaml:1: name: want a string, got a list"},
		{"tags: {a: b}\n", "f.yaml:1: tags: want a list, got a mapping"},
		{"hidden: x\n", "f.yaml:1: hidden: unknown key"},
		{"notag: yes\nbatch: {size: 1}\n", ""},
		{"base: &b {size: 1}\nbatch:\n  <<: *b\n  age: 1s\n", "f.yaml:1: base: unknown key"},
		{"batch:\n  <<: {size: 1, colour: red}\n", "f.yaml:2: batch.colour: unknown key"},
	} {
		err := decode(t, tc.text)
		if tc.want == "" {
			require.NoError(t, err, tc.text)
			continue
		}
		require.Error(t, err, tc.text)
		lines := strings.Split(err.Error(), "\n")
		require.Condition(t, func() bool {
			for _, l := range lines {
				if strings.HasPrefix(l, tc.want) {
					return true
				}
			}
			return false
		}, "%q: got %q", tc.text, lines)
		var e *Error
		require.True(t, errors.As(err, &e), tc.text)
	}
}

func TestDecodeReportsEveryProblemInLineOrder(t *testing.T) {
	err := decode(t, "batch:\n  size: x\nname: a\nfoo: 1\n")
	require.EqualError(t, err, "f.yaml:2: batch.size: want a whole number, got `x`\nf.yaml:4: foo: unknown key")
}

func TestParseError(t *testing.T) {
	_, err := Parse("f.yaml", []byte("a: [1,\nb: 2\n"))
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, "f.yaml", e.File)
	require.Positive(t, e.Line)
}

func TestConfigAndSettingsError(t *testing.T) {
	f, err := Parse("f.yaml", []byte("item:\n  settings:\n    count: 3\n    nmae: x\n"))
	require.NoError(t, err)
	_, item := Get(f.Root, "item")
	_, sn := Get(item, "settings")
	cfg, err := f.Config(sn, "item.settings")
	require.NoError(t, err)
	var v struct {
		Count int    `json:"count"`
		Name  string `json:"name"`
	}
	err = cfg.Decode(&v)
	require.Error(t, err)
	require.EqualError(t, f.SettingsError(item, sn, "item", "item.settings", err),
		`f.yaml:4: item.settings.nmae: config: json: unknown field "nmae"`)

	// A wrong type names its key too.
	f, err = Parse("f.yaml", []byte("settings:\n  name: x\n  count: three\n"))
	require.NoError(t, err)
	_, sn = Get(f.Root, "settings")
	cfg, err = f.Config(sn, "settings")
	require.NoError(t, err)
	err = cfg.Decode(&v)
	require.Error(t, err)
	require.ErrorContains(t, f.SettingsError(f.Root, sn, "", "settings", err), "f.yaml:3: settings.count: ")

	// Empty settings are the zero Config; a scalar is an error.
	f, err = Parse("f.yaml", []byte("a:\nb: 3\n"))
	require.NoError(t, err)
	_, an := Get(f.Root, "a")
	cfg, err = f.Config(an, "a")
	require.NoError(t, err)
	require.True(t, cfg.IsZero())
	_, bn := Get(f.Root, "b")
	_, err = f.Config(bn, "b")
	require.EqualError(t, err, "f.yaml:2: b: want a mapping of settings, got scalar 3")
}

func FuzzParseAndDecode(f *testing.F) {
	f.Add("name: a\nbatch: {size: 1, age: 1s}\nitems: [{size: 2}]\n")
	f.Add("base: &b {size: 1}\nbatch:\n  <<: *b\n")
	f.Add("- type: select\n  meters: [x]\n")
	f.Fuzz(func(t *testing.T, text string) {
		file, err := Parse("f.yaml", []byte(text))
		if err != nil || file.Root == nil {
			return
		}
		var v outer
		_ = file.Decode(file.Root, "", &v)
		_, _ = file.Stages(file.Root, "stages")
		_, _ = file.Config(file.Root, "")
	})
}
