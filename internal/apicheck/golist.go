package apicheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// listed is what `go list -json` reports of one package, as far as apicheck
// needs it.
type listed struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Imports    []string
	ImportMap  map[string]string
	Standard   bool
	DepOnly    bool
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// ModuleRoot returns the directory and the path of the module that holds the
// package in dir, as the go command sees it (also within a go.work).
func ModuleRoot(dir string) (root, module string, err error) {
	cmd := exec.Command("go", "list", "-f", "{{with .Module}}{{.Dir}}\t{{.Path}}{{end}}", ".")
	cmd.Dir = dir
	out, err := run(cmd)
	if err != nil {
		return "", "", err
	}
	d, p, ok := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !ok || d == "" || p == "" {
		return "", "", fmt.Errorf("apicheck: go list: no module for the package in %s: %q", dir, out)
	}
	return d, p, nil
}

// goList runs `go list -e -json` with args in dir and the extra environment,
// and decodes the packages it prints.
func goList(dir string, env []string, args ...string) ([]*listed, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Name,Dir,GoFiles,Imports,ImportMap,Standard,DepOnly,Module,Error"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := run(cmd)
	if err != nil {
		return nil, err
	}
	var pkgs []*listed
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		p := new(listed)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("apicheck: decode go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("apicheck: go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apicheck: %s (in %s): %w: %s", strings.Join(cmd.Args, " "), cmd.Dir, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// rel returns path relative to module ("" for the module itself), and whether
// path belongs to the module.
func rel(module, path string) (string, bool) {
	if path == module {
		return "", true
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r, true
	}
	return "", false
}

// hasInternal reports whether a module-relative path has an "internal"
// element, which makes it private machinery rather than public API.
func hasInternal(relPath string) bool {
	for _, e := range strings.Split(relPath, "/") {
		if e == "internal" {
			return true
		}
	}
	return false
}
