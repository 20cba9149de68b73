// Package apicheck keeps two promises of meterkit in tests, so that breaking
// either shows up in review rather than by accident.
//
// The public API is a deliberate list. [API] writes, for every public package
// of the module, one line per exported identifier in the form of Go's own
// api/go1.N.txt files; the listing lives in api/ at the module root, and
// TestAPI fails with the lines added and removed when the code differs from
// it. After an intended change, rewrite the listing and commit it with the
// change:
//
//	go test ./internal/apicheck -update
//
// The import arrows point one way. [Check] applies the rules of
// ARCHITECTURE.md's "Packages and what they may import" table to the module's
// import graph as `go list -deps` reports it (test files excluded), and
// TestArchitecture fails on any violation that is not listed as known.
//
// Both use only the standard library and the go command. The package is
// internal: it adds nothing to meterkit's API.
package apicheck
