package apicheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The rules of ARCHITECTURE.md's "Packages and what they may import", in the
// module-relative paths of its packages ("" is the root package, meter).
var (
	// table says what each top-level package may import of ours, besides
	// internal/ packages. A top-level package or folder missing here is a
	// violation: add its row to ARCHITECTURE.md and here together.
	table = map[string][]string{
		"":          nil,
		"driver":    {""},
		"stage":     {""},
		"transport": {""},
		"sink":      {""},
		"agent":     {"", "driver", "stage", "transport"},
		"publisher": {"", "stage", "transport", "sink"},
	}

	// core are the packages an author of a driver, stage, transport or sink
	// imports: they must not pull in a backend, neither one of ours (through
	// any chain of imports) nor a third-party one.
	core = []string{"", "driver", "stage", "transport", "sink"}

	// coreThirdParty lists the only modules from outside the standard library
	// that core packages may pull in: protobuf, whose wire format the
	// transport codec writes. mangos, riemann-go-client, gophercloud, bbolt,
	// amqp091-go and the rest belong to backends.
	coreThirdParty = []string{"google.golang.org/protobuf"}
)

// Rule names, as Violation.Rule reports them.
const (
	RuleTable          = "table"           // a top-level package imports beyond its row
	RuleSibling        = "sibling"         // a package imports a sibling or cousin below the same folder
	RuleFolder         = "folder"          // a package below a folder imports another folder's package
	RuleBackend        = "backend"         // a core package pulls in a backend
	RuleAgentPublisher = "agent-publisher" // agent and publisher depend on each other
	RuleExamples       = "examples"        // an example imports an internal package
)

// Graph is a module's import graph without test files, as `go list -deps`
// reports it.
type Graph struct {
	Module   string              // the module path
	Imports  map[string][]string // import path -> its direct imports
	Standard map[string]bool     // import paths of the standard library
}

// Violation is one import that breaks a rule. Pkg and Import are
// module-relative ("meter" for the root package); a third-party Import is
// its full path.
type Violation struct {
	Pkg, Import, Rule string
	Why               string // the rule in words, and the chain of imports where it is indirect
}

func (v Violation) String() string {
	if v.Import == "" {
		return fmt.Sprintf("%s [rule %s]: %s", v.Pkg, v.Rule, v.Why)
	}
	return fmt.Sprintf("%s imports %s [rule %s]: %s", v.Pkg, v.Import, v.Rule, v.Why)
}

// LoadGraph lists the module rooted at root and all its dependencies with
// `go list -deps`, for the same build configuration as [API].
func LoadGraph(root, module string) (Graph, error) {
	pkgs, err := goList(root, apiEnv, "-deps", "./...")
	if err != nil {
		return Graph{}, err
	}
	g := Graph{Module: module, Imports: map[string][]string{}, Standard: map[string]bool{}}
	for _, p := range pkgs {
		g.Imports[p.ImportPath] = p.Imports
		if p.Standard {
			g.Standard[p.ImportPath] = true
		}
	}
	return g, nil
}

// Check returns the violations of ARCHITECTURE.md's import rules in g,
// sorted:
//
//   - a top-level package imports of ours only what its row of the table
//     names (RuleTable); agent and publisher never depend on each other,
//     directly or not (RuleAgentPublisher);
//   - a package below a top-level folder never imports another package below
//     the same folder, except its own ancestors and descendants (a kit may
//     import the package it tests): RuleSibling; of other folders it imports
//     only what its top-level package's row names, so that agent/agentconfig
//     may open drivers and stages as agent does, and a backend below driver/
//     still imports only meter (RuleFolder);
//   - meter, driver, stage, transport and sink pull in, through any chain of
//     imports, no package of ours beyond their row and no third-party code but
//     coreThirdParty (RuleBackend);
//   - examples import only public packages (RuleExamples).
//
// Packages with an internal element in their path import what they need, and
// anyone may import them (within Go's own rule for internal).
func Check(g Graph) []Violation {
	var vs []Violation
	add := func(pkg, imp, rule, why string, args ...any) {
		vs = append(vs, Violation{Pkg: pkg, Import: imp, Rule: rule, Why: fmt.Sprintf(why, args...)})
	}
	for _, path := range slices.Sorted(maps.Keys(g.Imports)) {
		r, ours := rel(g.Module, path)
		if !ours || hasInternal(r) {
			continue
		}
		top, _, below := strings.Cut(r, "/")
		allowed, known := table[top]
		switch {
		case top == "examples":
			for _, imp := range g.ours(path) {
				if hasInternal(imp) {
					add(r, imp, RuleExamples, "examples are thin mains on the public API and import no internal/ package")
				}
			}
			continue
		case !known:
			add(r, "", RuleTable, "%s is not in ARCHITECTURE.md's table: add its row there and to apicheck's table", top+"/")
			continue
		}
		for _, imp := range g.ours(path) {
			if hasInternal(imp) {
				continue
			}
			if !below {
				if slices.Contains(allowed, imp) {
					continue
				}
				if (r == "agent" || r == "publisher") && (imp == "agent" || imp == "publisher") {
					continue // RuleAgentPublisher below says it
				}
				add(display(r), display(imp), RuleTable, "ARCHITECTURE.md's table lets %s import only %s of ours (and internal/ packages)", display(r), list(allowed))
				continue
			}
			switch {
			case imp == "" || imp == top || slices.Contains(allowed, imp) || within(imp, r) || within(r, imp):
			case strings.HasPrefix(imp, top+"/"):
				add(r, imp, RuleSibling, "below %s/ a package imports only its own parents and children (besides meter, %s and internal/ packages): a sibling never imports a sibling (ARCHITECTURE.md); wrap the interface instead", top, display(top))
			default:
				add(r, imp, RuleFolder, "a package below %s/ imports of ours only meter, %s, what %s's row of ARCHITECTURE.md's table lets it import (%s), its own parents and children, and internal/ packages", top, display(top), display(top), list(allowed))
			}
		}
	}

	for _, c := range core {
		path := g.abs(c)
		if _, ok := g.Imports[path]; !ok {
			continue // not written yet (stage)
		}
		direct := g.Imports[path]
		via := g.reach(path)
		for _, dep := range slices.Sorted(maps.Keys(via)) {
			r, ours := rel(g.Module, dep)
			if !ours || hasInternal(r) || slices.Contains(table[c], r) || slices.Contains(direct, dep) {
				continue // a direct import of ours breaks RuleTable, reported above
			}
			add(display(c), display(r), RuleBackend, "%s must pull in no backend: of ours only %s and internal/ packages that keep to it; it depends on %s through %s", display(c), list(table[c]), display(r), g.chain(via, path, dep))
		}
		// Third-party code is reported where ours imports it, not every
		// package of it that comes along.
		seen := map[string]bool{}
		for _, from := range append([]string{path}, slices.Sorted(maps.Keys(via))...) {
			if _, ours := rel(g.Module, from); !ours {
				continue
			}
			for _, dep := range g.Imports[from] {
				if _, ours := rel(g.Module, dep); ours || seen[dep] || g.Standard[dep] || dep == "C" || dep == "unsafe" ||
					slices.ContainsFunc(coreThirdParty, func(p string) bool { return dep == p || strings.HasPrefix(dep, p+"/") }) {
					continue
				}
				seen[dep] = true
				add(display(c), dep, RuleBackend, "%s must pull in no backend: of third-party code only %s; it depends on %s through %s -> %s", display(c), strings.Join(coreThirdParty, ", "), dep, g.chain(via, path, from), dep)
			}
		}
	}

	for _, pair := range [][2]string{{"agent", "publisher"}, {"publisher", "agent"}} {
		from, to := g.abs(pair[0]), g.abs(pair[1])
		if via := g.reach(from); via[to] != "" {
			add(pair[0], pair[1], RuleAgentPublisher, "agent and publisher compose the parts and never depend on each other: %s", g.chain(via, from, to))
		}
	}

	slices.SortFunc(vs, func(a, b Violation) int {
		return strings.Compare(a.Pkg+"\x00"+a.Import+"\x00"+a.Rule, b.Pkg+"\x00"+b.Import+"\x00"+b.Rule)
	})
	return vs
}

// ours returns the module-relative paths of path's direct imports within the
// module.
func (g Graph) ours(path string) []string {
	var rs []string
	for _, imp := range g.Imports[path] {
		if r, ok := rel(g.Module, imp); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

func (g Graph) abs(r string) string {
	if r == "" {
		return g.Module
	}
	return g.Module + "/" + r
}

// reach returns every package from depends on (not itself), each mapped to
// the package that first imported it on a shortest chain from from.
func (g Graph) reach(from string) map[string]string {
	via := map[string]string{}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g.Imports[p] {
			if _, seen := via[imp]; !seen && imp != from {
				via[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return via
}

// chain writes the imports from from to to: "transport -> internal/x -> go.etcd.io/bbolt".
func (g Graph) chain(via map[string]string, from, to string) string {
	var ps []string
	for p := to; p != from; p = via[p] {
		ps = append(ps, g.name(p))
	}
	ps = append(ps, g.name(from))
	slices.Reverse(ps)
	return strings.Join(ps, " -> ")
}

func (g Graph) name(path string) string {
	if r, ok := rel(g.Module, path); ok {
		return display(r)
	}
	return path
}

// within reports whether the module-relative path a lies below b.
func within(a, b string) bool { return strings.HasPrefix(a, b+"/") }

func display(r string) string {
	if r == "" {
		return "meter"
	}
	return r
}

func list(rs []string) string {
	if len(rs) == 0 {
		return "nothing"
	}
	ds := make([]string, len(rs))
	for i, r := range rs {
		ds[i] = display(r)
	}
	return strings.Join(ds, ", ")
}
