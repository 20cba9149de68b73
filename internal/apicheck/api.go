package apicheck

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// apiEnv fixes the build configuration the listing is made for, so that it
// reads the same on every machine (a file for another system or a C compiler
// on the path changes nothing).
var apiEnv = []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"}

// API returns the public API of the module rooted at root (module path
// module), one listing per public package, keyed by its file name in api/:
// "meter.txt" for the root package, "sink_riemann.txt" for sink/riemann.
//
// A public package is one of the module's packages that is not a command,
// has no "internal" element in its path and has non-test Go files. Each
// listing holds one sorted line per exported identifier, in the form of Go's
// api/go1.N.txt files:
//
//	pkg sink, func Fanout(...Sink) Sink
//	pkg sink, type PartialError struct, Rejected []int
//	pkg sink, method (*Recorder) Len() int
//	pkg transport, const Version = 1
//	pkg transport, const Version untyped int
//	pkg sink, type Sink interface, Write(context.Context, []meter.Measurement) error
//
// Parameter names are left out, so renaming a parameter changes nothing.
// Packages are type-checked from source (function bodies skipped), so the
// listing does not depend on the build cache.
func API(root, module string) (map[string][]string, error) {
	pkgs, err := goList(root, apiEnv, "-deps", "./...")
	if err != nil {
		return nil, err
	}
	l := &loader{fset: token.NewFileSet(), listed: map[string]*listed{}, checked: map[string]*loading{}}
	for _, p := range pkgs {
		l.listed[p.ImportPath] = p
	}
	var public []*listed
	for _, p := range pkgs {
		r, ours := rel(module, p.ImportPath)
		if ours && !p.DepOnly && p.Name != "main" && !hasInternal(r) && len(p.GoFiles) > 0 {
			public = append(public, p)
		}
	}
	var wg sync.WaitGroup
	for _, p := range public {
		wg.Go(func() { l.load(p.ImportPath) }) // in parallel; the loop below reads the results
	}
	wg.Wait()
	out := map[string][]string{}
	owner := map[string]string{}
	for _, p := range public {
		r, _ := rel(module, p.ImportPath)
		tp, err := l.load(p.ImportPath)
		if err != nil {
			return nil, err
		}
		name := "meter"
		if r != "" {
			name = r
		}
		lines := listAPI(name, tp)
		if len(lines) == 0 {
			continue
		}
		file := strings.ReplaceAll(name, "/", "_") + ".txt"
		if other, dup := owner[file]; dup {
			return nil, fmt.Errorf("apicheck: packages %s and %s both map to api/%s", other, name, file)
		}
		owner[file] = name
		out[file] = lines
	}
	return out, nil
}

// loader type-checks packages from the source files `go list` named,
// skipping function bodies, each once, and the imports of a package in
// parallel.
type loader struct {
	fset   *token.FileSet
	listed map[string]*listed

	mu      sync.Mutex
	checked map[string]*loading
}

type loading struct {
	once sync.Once
	pkg  *types.Package
	err  error
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

func (l *loader) load(path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	l.mu.Lock()
	e, ok := l.checked[path]
	if !ok {
		e = new(loading)
		l.checked[path] = e
	}
	l.mu.Unlock()
	e.once.Do(func() { e.pkg, e.err = l.check(path) })
	return e.pkg, e.err
}

func (l *loader) check(path string) (*types.Package, error) {
	p, ok := l.listed[path]
	if !ok {
		return nil, fmt.Errorf("apicheck: package %s is not in go list's output", path)
	}
	// Load the imports in parallel while this package's files are parsed.
	var wg sync.WaitGroup
	for _, imp := range p.Imports {
		wg.Go(func() { l.load(imp) }) // errors come back through the importer below
	}
	files := make([]*ast.File, 0, len(p.GoFiles))
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(l.fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			wg.Wait()
			return nil, fmt.Errorf("apicheck: %w", err)
		}
		files = append(files, f)
	}
	wg.Wait()
	var errs []error
	conf := types.Config{
		IgnoreFuncBodies: true,
		Importer: importerFunc(func(imp string) (*types.Package, error) {
			if m, ok := p.ImportMap[imp]; ok {
				imp = m
			}
			return l.load(imp)
		}),
		Error: func(err error) { errs = append(errs, err) },
	}
	tp, _ := conf.Check(path, l.fset, files, nil)
	if len(errs) > 0 {
		return nil, fmt.Errorf("apicheck: type-check %s: %w (and %d more errors)", path, errs[0], len(errs)-1)
	}
	return tp, nil
}

// listAPI returns the sorted lines of the exported API of pkg, each prefixed
// with "pkg name, ".
func listAPI(name string, pkg *types.Package) []string {
	w := &apiWriter{pkg: pkg, prefix: "pkg " + name + ", "}
	scope := pkg.Scope()
	for _, n := range scope.Names() {
		if !token.IsExported(n) {
			continue
		}
		switch obj := scope.Lookup(n).(type) {
		case *types.Const:
			w.emit("const %s = %s", n, constValue(obj.Val()))
			w.emit("const %s %s", n, w.typ(obj.Type()))
		case *types.Var:
			w.emit("var %s %s", n, w.typ(obj.Type()))
		case *types.Func:
			sig := obj.Signature()
			w.emit("func %s%s%s", n, w.typeParams(sig.TypeParams()), w.sig(sig))
		case *types.TypeName:
			w.typeName(obj)
		}
	}
	slices.Sort(w.lines)
	return slices.Compact(w.lines)
}

type apiWriter struct {
	pkg    *types.Package
	prefix string
	lines  []string
}

func (w *apiWriter) emit(format string, args ...any) {
	w.lines = append(w.lines, w.prefix+fmt.Sprintf(format, args...))
}

func (w *apiWriter) typeName(obj *types.TypeName) {
	n := obj.Name()
	if a, ok := obj.Type().(*types.Alias); ok {
		w.emit("type %s%s = %s", n, w.typeParams(a.TypeParams()), w.typ(a.Rhs()))
		return
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		w.emit("type %s %s", n, w.typ(obj.Type()))
		return
	}
	decl := n + w.typeParams(named.TypeParams())
	switch u := named.Underlying().(type) {
	case *types.Struct:
		w.emit("type %s struct", decl)
		for f := range u.Fields() {
			switch {
			case !f.Exported():
			case f.Embedded():
				w.emit("type %s struct, embedded %s", decl, w.typ(f.Type()))
			default:
				w.emit("type %s struct, %s %s", decl, f.Name(), w.typ(f.Type()))
			}
		}
	case *types.Interface:
		var names []string
		unexported := false
		for m := range u.Methods() {
			if !m.Exported() {
				unexported = true
				continue
			}
			names = append(names, m.Name())
			w.emit("type %s interface, %s%s", decl, m.Name(), w.sig(m.Signature()))
		}
		slices.Sort(names)
		for e := range u.EmbeddedTypes() {
			if _, isIface := e.Underlying().(*types.Interface); !isIface {
				names = append(names, w.typ(e)) // a constraint's type set: ~int | ~float64
			}
		}
		if unexported {
			names = append(names, "unexported methods")
			w.emit("type %s interface, unexported methods", decl)
		}
		if len(names) == 0 {
			w.emit("type %s interface {}", decl)
		} else {
			w.emit("type %s interface { %s }", decl, strings.Join(names, ", "))
		}
		return // an interface's methods are listed above
	default:
		w.emit("type %s %s", decl, w.typ(u))
	}

	// The method set of *T holds that of T; a method also in T's is listed
	// with a value receiver. Promoted methods count, as they do for callers.
	recv := n
	if tps := named.TypeParams(); tps.Len() > 0 {
		var ns []string
		for tp := range tps.TypeParams() {
			ns = append(ns, tp.Obj().Name())
		}
		recv += "[" + strings.Join(ns, ", ") + "]"
	}
	values := types.NewMethodSet(named)
	for sel := range types.NewMethodSet(types.NewPointer(named)).Methods() {
		m := sel.Obj()
		if !m.Exported() {
			continue
		}
		r := "*" + recv
		if values.Lookup(m.Pkg(), m.Name()) != nil {
			r = recv
		}
		w.emit("method (%s) %s%s", r, m.Name(), w.sig(sel.Type().(*types.Signature)))
	}
}

// typ writes t as Go source would, qualifying names from other packages by
// package name, and leaving out parameter names in function types.
func (w *apiWriter) typ(t types.Type) string {
	switch t := t.(type) {
	case *types.Basic:
		return t.Name()
	case *types.Pointer:
		return "*" + w.typ(t.Elem())
	case *types.Slice:
		return "[]" + w.typ(t.Elem())
	case *types.Array:
		return "[" + strconv.FormatInt(t.Len(), 10) + "]" + w.typ(t.Elem())
	case *types.Map:
		return "map[" + w.typ(t.Key()) + "]" + w.typ(t.Elem())
	case *types.Chan:
		switch t.Dir() {
		case types.SendOnly:
			return "chan<- " + w.typ(t.Elem())
		case types.RecvOnly:
			return "<-chan " + w.typ(t.Elem())
		}
		if c, ok := t.Elem().(*types.Chan); ok && c.Dir() == types.RecvOnly {
			return "chan (" + w.typ(c) + ")"
		}
		return "chan " + w.typ(t.Elem())
	case *types.Signature:
		return "func" + w.sig(t)
	case *types.Named:
		return w.objName(t.Obj()) + w.typeArgs(t.TypeArgs())
	case *types.Alias:
		return w.objName(t.Obj()) + w.typeArgs(t.TypeArgs())
	case *types.TypeParam:
		return t.Obj().Name()
	case *types.Struct:
		var fs []string
		for f := range t.Fields() {
			if f.Embedded() {
				fs = append(fs, w.typ(f.Type()))
			} else {
				fs = append(fs, f.Name()+" "+w.typ(f.Type()))
			}
		}
		if len(fs) == 0 {
			return "struct{}"
		}
		return "struct{ " + strings.Join(fs, "; ") + " }"
	case *types.Interface:
		if t.IsImplicit() && t.NumEmbeddeds() == 1 {
			return w.typ(t.EmbeddedType(0)) // a constraint written as ~int
		}
		var es []string
		for e := range t.EmbeddedTypes() {
			es = append(es, w.typ(e))
		}
		for m := range t.ExplicitMethods() {
			es = append(es, m.Name()+w.sig(m.Signature()))
		}
		if len(es) == 0 {
			return "interface{}"
		}
		return "interface{ " + strings.Join(es, "; ") + " }"
	case *types.Union:
		var ts []string
		for term := range t.Terms() {
			s := w.typ(term.Type())
			if term.Tilde() {
				s = "~" + s
			}
			ts = append(ts, s)
		}
		return strings.Join(ts, " | ")
	}
	return types.TypeString(t, w.qualify)
}

func (w *apiWriter) qualify(p *types.Package) string {
	if p == w.pkg {
		return ""
	}
	return p.Name()
}

func (w *apiWriter) objName(obj *types.TypeName) string {
	if obj.Pkg() == nil || obj.Pkg() == w.pkg {
		return obj.Name()
	}
	return obj.Pkg().Name() + "." + obj.Name()
}

func (w *apiWriter) typeArgs(l *types.TypeList) string {
	if l.Len() == 0 {
		return ""
	}
	var as []string
	for t := range l.Types() {
		as = append(as, w.typ(t))
	}
	return "[" + strings.Join(as, ", ") + "]"
}

func (w *apiWriter) typeParams(l *types.TypeParamList) string {
	if l.Len() == 0 {
		return ""
	}
	var ps []string
	for tp := range l.TypeParams() {
		ps = append(ps, tp.Obj().Name()+" "+w.typ(tp.Constraint()))
	}
	return "[" + strings.Join(ps, ", ") + "]"
}

// sig writes a signature without "func" and without parameter names:
// "(context.Context, ...string) (int, error)".
func (w *apiWriter) sig(s *types.Signature) string {
	var ps []string
	for i := range s.Params().Len() {
		t := s.Params().At(i).Type()
		if s.Variadic() && i == s.Params().Len()-1 {
			if sl, ok := t.(*types.Slice); ok {
				ps = append(ps, "..."+w.typ(sl.Elem()))
				continue
			}
		}
		ps = append(ps, w.typ(t))
	}
	out := "(" + strings.Join(ps, ", ") + ")"
	switch r := s.Results(); r.Len() {
	case 0:
	case 1:
		out += " " + w.typ(r.At(0).Type())
	default:
		var rs []string
		for v := range r.Variables() {
			rs = append(rs, w.typ(v.Type()))
		}
		out += " (" + strings.Join(rs, ", ") + ")"
	}
	return out
}

func constValue(v constant.Value) string {
	switch v.Kind() {
	case constant.String:
		return strconv.Quote(constant.StringVal(v))
	case constant.Int:
		return v.ExactString()
	case constant.Float:
		f, _ := constant.Float64Val(v)
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return v.String()
}
