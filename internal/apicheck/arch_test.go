package apicheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// knownViolations are the violations of today's tree that are being
// removed. TestArchitecture fails on any other violation, and on a listed
// one that no longer exists, so this list only shrinks: delete an entry with
// the change that fixes it.
var knownViolations = []Violation{}

// TestArchitecture checks the module's own import graph (test files
// excluded) against ARCHITECTURE.md's rules; see Check.
func TestArchitecture(t *testing.T) {
	dir, module := moduleRoot(t)
	g, err := LoadGraph(dir, module)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"", "driver", "transport", "sink", "agent", "publisher"} {
		if _, ok := g.Imports[g.abs(c)]; !ok {
			t.Fatalf("go list did not report %s: the graph is not the module's", g.abs(c))
		}
	}
	unexpected, gone := splitKnown(Check(g), knownViolations)
	for _, v := range unexpected {
		t.Errorf("%v", v)
	}
	for _, v := range gone {
		t.Errorf("known violation %s -> %s [rule %s] no longer exists: delete it from knownViolations in %s",
			v.Pkg, v.Import, v.Rule, "internal/apicheck/arch_test.go")
	}
}

// splitKnown returns the violations in vs that known does not list, and the
// known ones that vs lacks.
func splitKnown(vs, known []Violation) (unexpected, gone []Violation) {
	key := func(v Violation) string { return v.Pkg + " " + v.Import + " " + v.Rule }
	var have []string
	for _, v := range vs {
		have = append(have, key(v))
		if !slices.ContainsFunc(known, func(k Violation) bool { return key(k) == key(v) }) {
			unexpected = append(unexpected, v)
		}
	}
	for _, k := range known {
		if !slices.Contains(have, key(k)) {
			gone = append(gone, k)
		}
	}
	return unexpected, gone
}

// TestCheckCatches feeds Check a made-up module that breaks every rule once,
// next to imports that keep them.
func TestCheckCatches(t *testing.T) {
	const m = "example.com/m"
	imports := map[string][]string{
		m:                        {"fmt"},
		m + "/driver":            {m, m + "/transport"},
		m + "/driver/host":       {m, m + "/driver", m + "/internal/tls", "golang.org/x/sys/unix"},
		m + "/driver/drivertest": {m, m + "/driver", "testing"},
		m + "/transport":         {m, m + "/internal/spool", "google.golang.org/protobuf/encoding/protowire"},
		"google.golang.org/protobuf/encoding/protowire": {"google.golang.org/protobuf/internal/errors"},
		"google.golang.org/protobuf/internal/errors":    nil,
		m + "/internal/spool":                           {"go.etcd.io/bbolt"},
		m + "/internal/tls":                             {"crypto/tls"},
		"go.etcd.io/bbolt":                              {"go.etcd.io/bbolt/internal/common"}, // reported once, where ours imports it
		"go.etcd.io/bbolt/internal/common":              nil,
		"golang.org/x/sys/unix":                         nil,
		m + "/transport/nanomsg":                        {m + "/transport", m + "/transport/seal", "go.nanomsg.org/mangos/v3"},
		m + "/transport/seal":                           {m + "/transport"},
		m + "/transport/transporttest":                  {m + "/transport", m + "/sink/riemann"},
		m + "/sink":                                     {m, m + "/sink/internal/keystone"},
		m + "/sink/internal/keystone":                   {m + "/sink", m + "/sink/riemann"},
		m + "/sink/riemann":                             {m, m + "/sink", m + "/sink/riemann/riemanntest"},
		m + "/sink/riemann/riemanntest":                 {m + "/sink/riemann", "testing"},
		m + "/sink/gnocchi":                             {m + "/sink", m + "/sink/internal/keystone", m + "/sink/riemann"},
		m + "/sink/gnocchi/v1":                          {m + "/sink/gnocchi", m + "/sink/riemann/riemanntest"},
		m + "/agent":                                    {m, m + "/driver", m + "/transport", m + "/internal/spool", m + "/sink", m + "/publisher"},
		m + "/publisher":                                {m, m + "/transport", m + "/sink", m + "/internal/spool"},
		m + "/agent/agentconfig":                        {m, m + "/agent", m + "/driver", m + "/transport"},
		m + "/agent/badconfig":                          {m + "/agent", m + "/sink", m + "/driver/host"},
		m + "/web":                                      {m},
		m + "/examples/agent":                           {m + "/agent", m + "/driver/host"},
		m + "/examples/publisher":                       {m + "/publisher", m + "/internal/spool"},
		"fmt":                                           nil,
		"crypto/tls":                                    nil,
		"testing":                                       nil,
		"go.nanomsg.org/mangos/v3":                      nil,
	}
	std := map[string]bool{"fmt": true, "crypto/tls": true, "testing": true}
	got := Check(Graph{Module: m, Imports: imports, Standard: std})

	want := []string{
		"agent imports publisher [rule agent-publisher]",
		"agent imports sink [rule table]",
		"agent/badconfig imports driver/host [rule folder]",
		"agent/badconfig imports sink [rule folder]",
		"driver imports transport [rule table]",
		"driver imports go.etcd.io/bbolt [rule backend]",
		"examples/publisher imports internal/spool [rule examples]",
		"sink imports sink/riemann [rule backend]",
		"sink imports sink/riemann/riemanntest [rule backend]",
		"sink/gnocchi imports sink/riemann [rule sibling]",
		"sink/gnocchi/v1 imports sink/riemann/riemanntest [rule sibling]",
		"transport imports go.etcd.io/bbolt [rule backend]",
		"transport/nanomsg imports transport/seal [rule sibling]",
		"transport/transporttest imports sink/riemann [rule folder]",
		"web [rule table]",
	}
	var have []string
	for _, v := range got {
		have = append(have, strings.SplitN(v.String(), ":", 2)[0])
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(have, want) {
		t.Errorf("Check found:\n\t%s\nwant:\n\t%s", strings.Join(have, "\n\t"), strings.Join(want, "\n\t"))
	}

	// An indirect dependency names its chain, and each rule says itself.
	byKey := map[string]Violation{}
	for _, v := range got {
		byKey[v.Pkg+" "+v.Import] = v
	}
	for key, why := range map[string]string{
		"transport go.etcd.io/bbolt":           "transport -> internal/spool -> go.etcd.io/bbolt",
		"sink sink/riemann":                    "sink -> sink/internal/keystone -> sink/riemann",
		"driver go.etcd.io/bbolt":              "driver -> transport -> internal/spool -> go.etcd.io/bbolt",
		"agent publisher":                      "agent -> publisher",
		"transport/nanomsg transport/seal":     "a sibling never imports a sibling (ARCHITECTURE.md)",
		"transport/transporttest sink/riemann": "imports of ours only meter, transport,",
	} {
		if v, ok := byKey[key]; !ok || !strings.Contains(v.Why, why) {
			t.Errorf("violation %q says %q, want it to contain %q", key, v.Why, why)
		}
	}

	// The known list excuses exactly what it names, and reports what is gone.
	known := []Violation{
		{Pkg: "transport/nanomsg", Import: "transport/seal", Rule: RuleSibling},
		{Pkg: "sink/console", Import: "sink/riemann", Rule: RuleSibling},
	}
	unexpected, gone := splitKnown(got, known)
	if len(unexpected) != len(got)-1 {
		t.Errorf("splitKnown excused %d violations, want 1", len(got)-len(unexpected))
	}
	if fmt.Sprint(gone) != fmt.Sprint(known[1:]) {
		t.Errorf("splitKnown: gone = %v, want %v", gone, known[1:])
	}
}
