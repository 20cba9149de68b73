//go:build !race

package nanomsg_test

const raceEnabled = false
