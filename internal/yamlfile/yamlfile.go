package yamlfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// File is a YAML file read whole. Its nodes keep their lines, so every error
// about the file names the line and the key it is about.
type File struct {
	Name string     // the file's name as errors give it
	Root *yaml.Node // the document's top node; nil for an empty file
}

// Read reads and parses the named file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// ReadWith reads the named file and gives it to decode: the Load of a
// loader (agentconfig, publisherconfig).
func ReadWith[T any](path string, decode func(*File) (T, error)) (T, error) {
	f, err := Read(path)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(f)
}

// ParseWith parses b, the content of the file name, and gives it to
// decode: the Parse of a loader.
func ParseWith[T any](name string, b []byte, decode func(*File) (T, error)) (T, error) {
	f, err := Parse(name, b)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(f)
}

var yamlLine = lazyRE(`^yaml: line (\d+): (.*)$`)

// Parse parses b, the content of the file name.
func Parse(name string, b []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		if m := yamlLine().FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: name, Line: line, Err: errors.New(m[2])}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &File{Name: name}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		f.Root = doc.Content[0]
	}
	return f, nil
}

// Error is one problem in a file, at a line and (if known) a key, written
// FILE:LINE: KEY: message. Key is a path such as drivers[1].interval.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error about node n (its line) and key.
func (f *File) Errorf(n *yaml.Node, key, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: f.Name, Line: line, Key: key, Err: fmt.Errorf(format, args...)}
}

// Wrap makes an *Error about node n and key from err.
func (f *File) Wrap(n *yaml.Node, key string, err error) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: f.Name, Line: line, Key: key, Err: err}
}

// Join joins path elements: Join("drivers[0]", "interval").
func Join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Get returns the value of key in the mapping n, and the key's own node.
func Get(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// Keys lists the keys of the mapping n, in order.
func Keys(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i])
	}
	return keys
}

var (
	unknownField = lazyRE(`^line (\d+): field (\S+) not found in type .*$`)
	cannot       = lazyRE(`^line (\d+): cannot unmarshal (!!\w+) ?(.*) into (\S+)$`)
	anyLine      = lazyRE(`^line (\d+): (.*)$`)
)

// Decode decodes n into v strictly: a key v has no field for, a value of the
// wrong type or a duration time.ParseDuration refuses is an error. The
// errors, one per problem, are *Error values joined, their keys paths below
// prefix.
func (f *File) Decode(n *yaml.Node, prefix string, v any) error {
	if n == nil {
		return nil
	}
	err := decodeStrict(n, v)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return f.Wrap(n, prefix, err)
	}
	paths := keyPaths(n, prefix)
	var errs []error
	for _, msg := range te.Errors {
		switch {
		case unknownField().MatchString(msg):
			m := unknownField().FindStringSubmatch(msg)
			line, _ := strconv.Atoi(m[1])
			errs = append(errs, &Error{File: f.Name, Line: line, Key: paths.find(line, m[2]), Err: errors.New("unknown key")})
		case cannot().MatchString(msg):
			m := cannot().FindStringSubmatch(msg)
			line, _ := strconv.Atoi(m[1])
			var e error
			switch {
			case m[4] == "time.Duration":
				e = fmt.Errorf("bad duration %s: want a number and a unit, like 10s, 1m30s or 250ms", m[3])
			case m[3] == "":
				e = fmt.Errorf("want %s, got a %s", typeName(m[4]), kindName(m[2]))
			default:
				e = fmt.Errorf("want %s, got %s", typeName(m[4]), m[3])
			}
			errs = append(errs, &Error{File: f.Name, Line: line, Key: paths.value(line, strings.Trim(m[3], "`")), Err: e})
		case anyLine().MatchString(msg):
			m := anyLine().FindStringSubmatch(msg)
			line, _ := strconv.Atoi(m[1])
			errs = append(errs, &Error{File: f.Name, Line: line, Key: paths.find(line, ""), Err: errors.New(m[2])})
		default:
			errs = append(errs, f.Wrap(n, prefix, errors.New(msg)))
		}
	}
	return errors.Join(errs...)
}

// decodeStrict decodes n into v, and refuses the keys of mappings that v's
// structs have no field for. yaml.Node.Decode has no such switch (only a
// Decoder reading text has, and encoding the node again would move its
// lines), so the keys are checked against the yaml tags here.
func decodeStrict(n *yaml.Node, v any) error {
	var msgs []string
	checkKnown(n, reflect.TypeOf(v), &msgs, map[*yaml.Node]bool{})
	err := n.Decode(v)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		msgs = append(msgs, te.Errors...)
	default:
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgLine(msgs[i]) < msgLine(msgs[j]) })
	return &yaml.TypeError{Errors: msgs}
}

func msgLine(msg string) int {
	if m := anyLine().FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKnown adds a message, in yaml's own words, for every key of a mapping
// in n that the struct t would decode it into has no field for.
// Each alias a merge key names is followed once (seen), so that aliases of
// aliases cannot make it exponential.
func checkKnown(n *yaml.Node, t reflect.Type, msgs *[]string, seen map[*yaml.Node]bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return
		}
		t = t.Elem()
	}
	if t == nil || n == nil || reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	if n.Kind == yaml.AliasNode {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == reflect.TypeOf(yaml.Node{}) {
			return
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" { // <<: *base merges base's keys
				checkMerged(n.Content[i+1], t, msgs, seen)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*msgs = append(*msgs, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, t))
				continue
			}
			checkKnown(n.Content[i+1], ft, msgs, seen)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				checkKnown(c, t.Elem(), msgs, seen)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				checkKnown(n.Content[i], t.Elem(), msgs, seen)
			}
		}
	}
}

// checkMerged checks the mappings a merge key (<<) brings in.
func checkMerged(v *yaml.Node, t reflect.Type, msgs *[]string, seen map[*yaml.Node]bool) {
	switch v.Kind {
	case yaml.AliasNode:
		if !seen[v.Alias] {
			seen[v.Alias] = true
			checkKnown(v.Alias, t, msgs, seen)
		}
	case yaml.MappingNode:
		checkKnown(v, t, msgs, seen)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			checkMerged(c, t, msgs, seen)
		}
	}
}

// collectFields maps the keys a struct decodes to their field types, as
// yaml.v3 names them: the tag's name, or the field's name in lower case;
// ",inline" fields add theirs; "-" fields are not decoded.
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

func typeName(t string) string {
	switch t {
	case "string":
		return "a string"
	case "int", "int64", "uint", "uint64", "int32":
		return "a whole number"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	}
	if strings.HasPrefix(t, "[]") {
		return "a list"
	}
	if strings.HasPrefix(t, "map[") {
		return "a mapping"
	}
	return "a mapping" // a struct
}

func kindName(tag string) string {
	switch tag {
	case "!!seq":
		return "list"
	case "!!map":
		return "mapping"
	}
	return strings.TrimPrefix(tag, "!!")
}

// paths maps lines to the key paths whose key or value is there.
type paths map[int][]entry

type entry struct {
	path   string
	value  string // a scalar value's text
	scalar bool
}

func keyPaths(n *yaml.Node, prefix string) paths {
	p := paths{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				sub := Join(path, k.Value)
				if k.Tag == "!!merge" {
					sub = path // the merged keys are the mapping's own
				}
				e := entry{path: sub, value: v.Value, scalar: v.Kind == yaml.ScalarNode}
				p[k.Line] = append(p[k.Line], e)
				if v.Line != k.Line {
					p[v.Line] = append(p[v.Line], e)
				}
				walk(v, sub)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				sub := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode {
					p[c.Line] = append(p[c.Line], entry{path: sub, value: c.Value, scalar: true})
				}
				walk(c, sub)
			}
		}
	}
	walk(n, prefix)
	return p
}

// find returns the path at line whose last key is key, or else the first
// path there.
func (p paths) find(line int, key string) string {
	es := p[line]
	for _, e := range es {
		if e.path == key || strings.HasSuffix(e.path, "."+key) {
			return e.path
		}
	}
	if len(es) == 0 {
		return key
	}
	return es[0].path
}

// value returns the path at line whose scalar value is v, or else the first
// path there (a list or mapping given where a scalar belongs).
func (p paths) value(line int, v string) string {
	es := p[line]
	if v != "" {
		for _, e := range es {
			if e.scalar && e.value == v {
				return e.path
			}
		}
	}
	if len(es) == 0 {
		return ""
	}
	return es[0].path
}

// Config converts n, a mapping of a part's own settings, to a meter.Config
// (JSON), for the part's factory to decode. A nil node is the zero Config.
func (f *File) Config(n *yaml.Node, key string) (meter.Config, error) {
	if n == nil {
		return meter.Config{}, nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return meter.Config{}, nil // settings: with nothing after it
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return meter.Config{}, f.Errorf(n, key, "want a mapping of settings, got %s", Describe(n))
	}
	var v map[string]any
	if err := n.Decode(&v); err != nil {
		return meter.Config{}, f.Wrap(n, key, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return meter.Config{}, f.Wrap(n, key, err)
	}
	return meter.ConfigFromJSON(b), nil
}

var (
	jsonUnknown = lazyRE(`unknown field "([^"]+)"`)
	jsonField   = lazyRE(`Go struct field (\S+) of type`)
)

// SettingsError maps err, from a factory that decoded the settings n (a
// mapping; nil if none were given) with meter.Config.Decode, to the line of
// the setting it is about: an unknown key or a value of the wrong type names
// its key, found at any depth below settingsKey; a value the factory quotes
// in its error (a bad duration, say) names the key that holds it. Other
// errors name the item's line (at, with key).
func (f *File) SettingsError(at, n *yaml.Node, key, settingsKey string, err error) error {
	if k, path := settingFor(n, settingsKey, err.Error()); k != nil {
		return f.Wrap(k, path, err)
	}
	return f.Wrap(at, key, err)
}

var quoted = lazyRE(`"([^"]*)"`)

// settingFor finds the key of n that msg is about, and its path.
func settingFor(n *yaml.Node, prefix, msg string) (*yaml.Node, string) {
	name := ""
	if m := jsonUnknown().FindStringSubmatch(msg); m != nil {
		name = m[1]
	} else if m := jsonField().FindStringSubmatch(msg); m != nil {
		parts := strings.Split(m[1], ".")
		name = parts[len(parts)-1]
	}
	if name != "" {
		return find(n, prefix, func(k, _ *yaml.Node) bool { return k.Value == name })
	}
	for _, m := range quoted().FindAllStringSubmatch(msg, -1) {
		if m[1] == "" {
			continue
		}
		if k, path := find(n, prefix, func(_, v *yaml.Node) bool { return v.Kind == yaml.ScalarNode && v.Value == m[1] }); k != nil {
			return k, path
		}
	}
	return nil, ""
}

// find returns the first key below n, depth first, for which match holds,
// and its path.
func find(n *yaml.Node, path string, match func(k, v *yaml.Node) bool) (*yaml.Node, string) {
	if n == nil {
		return nil, ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := Join(path, k.Value)
			if match(k, v) {
				return k, sub
			}
			if kn, p := find(v, sub, match); kn != nil {
				return kn, p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if kn, p := find(c, fmt.Sprintf("%s[%d]", path, i), match); kn != nil {
				return kn, p
			}
		}
	}
	return nil, ""
}

// Describe names the kind of node n for a message.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "scalar " + n.Value
	}
	return "a document"
}

// Stage is one item of a stage list: its spec and where it is.
type Stage struct {
	stage.Spec
	Line int
	Key  string     // stages[2]
	Node *yaml.Node // the item, for SettingsError
}

// Stages parses list, a YAML list of stages (- type: select ...; settings
// flat beside type and name), key naming it in errors. Names default to the
// type and are unique.
func (f *File) Stages(list *yaml.Node, key string) ([]Stage, error) {
	if list == nil {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, f.Errorf(list, key, "want a list of stages (- type: select ...), got %s", Describe(list))
	}
	out := make([]Stage, 0, len(list.Content))
	seen := map[string]int{}
	var errs []error
	for i, item := range list.Content {
		ik := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			errs = append(errs, f.Errorf(item, ik, "want a stage (type: and its settings), got %s", Describe(item)))
			continue
		}
		cfg, err := f.Config(item, ik)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		raw, _ := cfg.MarshalJSON()
		var sp stage.Spec
		if err := json.Unmarshal(raw, &sp); err != nil {
			errs = append(errs, f.Wrap(item, ik, err))
			continue
		}
		if sp.Name == "" {
			sp.Name = sp.Type
		}
		if line, dup := seen[sp.Name]; dup {
			errs = append(errs, f.Errorf(item, ik, "a stage named %q is already at line %d: give each a name of its own", sp.Name, line))
			continue
		}
		seen[sp.Name] = item.Line
		out = append(out, Stage{Spec: sp, Line: item.Line, Key: ik, Node: item})
	}
	return out, errors.Join(errs...)
}

// OpenStages opens each stage of specs in the default stage registry, names
// it and chains them. An unknown type lists the registered ones; a factory's
// error names the setting's line where it can.
func (f *File) OpenStages(specs []Stage) (stage.Stage, error) { return f.openStages(specs, nil) }

// openStages is OpenStages; the stages fresh names start with no state
// even when the chain is restored (reload.go).
func (f *File) openStages(specs []Stage, fresh map[string]bool) (stage.Stage, error) {
	stages := make([]stage.Stage, 0, len(specs))
	var errs []error
	for _, sp := range specs {
		if _, err := stage.Lookup(sp.Type); err != nil {
			k, _ := Get(sp.Node, "type")
			errs = append(errs, f.Errorf(k, Join(sp.Key, "type"), "unknown stage %q (registered: %s)", sp.Type, strings.Join(stage.Stages(), ", ")))
			continue
		}
		s, err := stage.Open(sp.Type, sp.Settings)
		if err != nil {
			errs = append(errs, f.flatSettingsError(sp.Node, sp.Key, fmt.Errorf("stage %s: %w", sp.Name, err)))
			continue
		}
		named := stage.Named(sp.Name, s)
		if fresh[sp.Name] {
			named = &freshStage{Stage: named}
		}
		stages = append(stages, named)
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range stages {
			CloseStage(s)
		}
		return nil, err
	}
	return stage.Chain(stages...), nil
}

// flatSettingsError is SettingsError for settings written flat in the item.
func (f *File) flatSettingsError(item *yaml.Node, key string, err error) error {
	return f.SettingsError(item, item, key, key, err)
}

// CloseStage closes s if it holds resources.
func CloseStage(s stage.Stage) {
	if c, ok := stage.As[interface{ Close() error }](s); ok {
		_ = c.Close()
	}
}

// OpenStageList opens the stages of a config file: those listed inline in f,
// or, if stagesFile is given, those of that file (a YAML stage list, as
// stage/stagefile reads). It returns nil for no stages.
func OpenStageList(f *File, inline []Stage, stagesFile string) (stage.Stage, error) {
	specs := inline
	if stagesFile != "" {
		sf, err := Read(stagesFile)
		if err != nil {
			return nil, fmt.Errorf("stages_file: %w", err)
		}
		if specs, err = sf.Stages(sf.Root, "stages"); err != nil {
			return nil, err
		}
		f = sf
	}
	if len(specs) == 0 {
		return nil, nil
	}
	return f.OpenStages(specs)
}

// Path resolves p, a path given in the file, against the file's directory,
// as Prometheus does for the files its configuration names: a relative path
// in /etc/meterkit/agent.yaml means the same wherever the program runs. An
// empty or absolute path is returned as it is.
func (f *File) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.Name), p)
}

// lazyRE compiles expr the first time it is used: a program that reads no
// file with an error pays nothing for these at start-up.
func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
