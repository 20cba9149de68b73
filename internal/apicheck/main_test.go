package apicheck

import (
	"os/exec"
	"sync"
	"testing"
)

var root = sync.OnceValues(func() ([2]string, error) {
	dir, module, err := ModuleRoot(".")
	return [2]string{dir, module}, err
})

// moduleRoot returns the module's directory and path, and skips the test
// when there is no go command to ask.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("skipped: these checks run the go command, and it is not on PATH: %v", err)
	}
	r, err := root()
	if err != nil {
		t.Fatal(err)
	}
	return r[0], r[1]
}
