//go:build !linux

package main

// releaseStartupPages does nothing outside Linux.
func releaseStartupPages() (uint64, error) { return 0, nil }
