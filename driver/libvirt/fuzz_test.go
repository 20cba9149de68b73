package libvirt

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseDomain feeds domain XML to the parser: it must not panic, and
// what it accepts must have the ids the measurements need.
func FuzzParseDomain(f *testing.F) {
	for _, p := range []string{"testdata/instance-00000001.xml", "testdata/instance-00000003.xml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`<domain><name>a</name><uuid>u</uuid><devices><disk><source/><target dev=''/></disk></devices></domain>`)
	f.Fuzz(func(t *testing.T, desc string) {
		m, err := parseDomain(desc)
		if err != nil {
			return
		}
		if m.uuid == "" || len(m.instLabels) == 0 {
			t.Fatalf("accepted without uuid or name: %+v", m)
		}
		for _, d := range append(m.disks, m.nics...) {
			if d.name == "" || !strings.Contains(d.resource, m.uuid) {
				t.Fatalf("device %+v of %s", d, m.uuid)
			}
		}
	})
}
