package apicheck

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the api/ listing from the code")

// api is the module's API, worked out once for the tests that read it.
var api = sync.OnceValues(func() (map[string][]string, error) {
	r, err := root()
	if err != nil {
		return nil, err
	}
	return API(r[0], r[1])
})

// TestAPI compares the exported API of every public package with the
// listing in api/ at the module root.
func TestAPI(t *testing.T) {
	dir, _ := moduleRoot(t)
	got, err := api()
	if err != nil {
		t.Fatal(err)
	}
	apiDir := filepath.Join(dir, "api")
	if *update {
		if err := WriteListing(apiDir, got); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the listing of %d packages to %s", len(got), apiDir)
		return
	}
	want, err := ReadListing(apiDir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := DiffListing("api", want, got); diff != "" {
		t.Errorf("the public API differs from its listing in api/ (+ added, - removed):\n%s\n"+
			"If the change is intended, rewrite the listing and commit it with the change:\n"+
			"\tgo test ./internal/apicheck -update", diff)
	}
}

// TestAPIListing checks the listing's shape on the module (a file per public
// package, named after it, no internal package), and that the comparison
// reads a change as lines added and removed.
func TestAPIListing(t *testing.T) {
	moduleRoot(t)
	got, err := api()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got["meter.txt"], "pkg meter, type Measurement struct") {
		t.Errorf("meter.txt lacks meter.Measurement; it holds:\n%s", strings.Join(got["meter.txt"], "\n"))
	}
	for file, lines := range got {
		if strings.Contains(file, "internal") {
			t.Errorf("an internal package is listed: %s", file)
		}
		for _, l := range lines {
			name, _, _ := strings.Cut(strings.TrimPrefix(l, "pkg "), ", ")
			if strings.ReplaceAll(name, "/", "_")+".txt" != file {
				t.Errorf("%s holds a line of another package: %s", file, l)
			}
		}
	}

	want := map[string][]string{"a.txt": {"pkg a, func F(int)", "pkg a, var V int"}, "gone.txt": {"pkg gone, func G()"}}
	changed := map[string][]string{"a.txt": {"pkg a, func F(string)", "pkg a, var V int"}, "new.txt": {"pkg new, func N()"}}
	const diff = "api/a.txt:\n  -pkg a, func F(int)\n  +pkg a, func F(string)\n" +
		"api/gone.txt:\n  -pkg gone, func G()\n" +
		"api/new.txt:\n  +pkg new, func N()\n"
	if d := DiffListing("api", want, changed); d != diff {
		t.Errorf("DiffListing:\n%s\nwant:\n%s", d, diff)
	}
	if d := DiffListing("api", want, want); d != "" {
		t.Errorf("DiffListing of equal listings: %q", d)
	}
}

// TestListAPIForms lists a made-up package with the forms the listing must
// write: generics, embedding, promoted methods, interfaces with unexported
// methods, aliases, constants, variadic and function-typed parameters.
func TestListAPIForms(t *testing.T) {
	const src = `package p

const (
	A      = 1 << 10
	B Kind = iota
	S      = "x\ty"
	F      = 0.25
	hidden = 2
)

type Kind uint8

func (Kind) String() string { return "" }
func (*Kind) Set(string) error { return nil }

type Base struct{ ID int }

func (Base) Name() string   { return "" }
func (*Base) Rename(string) {}

type inner struct{ Shared bool }

func (inner) Promoted() {}

type T struct {
	Base
	inner
	Items   []map[string]*Base
	Ch      <-chan error
	Fn      func(ctx any, n int) (ok bool, err error)
	private int
}

type I interface {
	Close() error
	Write(p []byte, opts ...string) (int, error)
	seal()
}

type Num interface{ ~int | ~float64 }

type Any interface{}

type List[E any] struct{ Items []E }

func (l *List[E]) Push(e E) {}

type Alias = List[int]

type Handler func(name string, values ...int) error

var Default = &List[string]{}

func Map[E, R any, N Num](in []E, f func(E) R, n N) []R { return nil }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := new(types.Config).Check("example.com/m/p", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`pkg p, const A = 1024`,
		`pkg p, const A untyped int`,
		`pkg p, const B = 1`,
		`pkg p, const B Kind`,
		`pkg p, const F = 0.25`,
		`pkg p, const F untyped float`,
		`pkg p, const S = "x\ty"`,
		`pkg p, const S untyped string`,
		`pkg p, func Map[E any, R any, N Num]([]E, func(E) R, N) []R`,
		`pkg p, method (*Base) Rename(string)`,
		`pkg p, method (*Kind) Set(string) error`,
		`pkg p, method (*List[E]) Push(E)`,
		`pkg p, method (*T) Rename(string)`,
		`pkg p, method (Base) Name() string`,
		`pkg p, method (Kind) String() string`,
		`pkg p, method (T) Name() string`,
		`pkg p, method (T) Promoted()`,
		`pkg p, type Alias = List[int]`,
		`pkg p, type Any interface {}`,
		`pkg p, type Base struct`,
		`pkg p, type Base struct, ID int`,
		`pkg p, type Handler func(string, ...int) error`,
		`pkg p, type I interface { Close, Write, unexported methods }`,
		`pkg p, type I interface, Close() error`,
		`pkg p, type I interface, Write([]byte, ...string) (int, error)`,
		`pkg p, type I interface, unexported methods`,
		`pkg p, type Kind uint8`,
		`pkg p, type List[E any] struct`,
		`pkg p, type List[E any] struct, Items []E`,
		`pkg p, type Num interface { ~int | ~float64 }`,
		`pkg p, type T struct`,
		`pkg p, type T struct, Ch <-chan error`,
		`pkg p, type T struct, Fn func(any, int) (bool, error)`,
		`pkg p, type T struct, Items []map[string]*Base`,
		`pkg p, type T struct, embedded Base`,
		`pkg p, var Default *List[string]`,
	}
	if got := listAPI("p", pkg); !slices.Equal(got, want) {
		t.Errorf("listAPI:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
