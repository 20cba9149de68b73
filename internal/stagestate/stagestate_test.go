package stagestate_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/stagestate"
	"github.com/meterkit/meter/stage"
)

// counter counts the measurements it passes; its count is its state.
type counter struct {
	n   int
	bad bool // Restore fails
}

func (c *counter) Process(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	c.n += len(in)
	return append(out, in...), nil
}

func (c *counter) Checkpoint() ([]byte, error) { return []byte(strconv.Itoa(c.n)), nil }

func (c *counter) Restore(b []byte) error {
	if c.bad {
		return errors.New("refused")
	}
	n, err := strconv.Atoi(string(b))
	c.n = n
	return err
}

func TestSame(t *testing.T) {
	a, b := &counter{}, &counter{}
	uncomparable := stage.Func(func(_ context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
		return append(out, in...), nil
	})
	for _, tc := range []struct {
		name string
		x, y any
		want bool
	}{
		{"both nil", nil, nil, true},
		{"one nil", a, nil, false},
		{"same pointer", a, a, true},
		{"two pointers", a, b, false},
		{"func", uncomparable, uncomparable, false},
		{"slices", []int{1}, []int{1}, false},
		{"equal strings", "x", "x", true},
		{"types differ", 1, int64(1), false},
	} {
		if got := stagestate.Same(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: Same = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCarryByName(t *testing.T) {
	ctx := context.Background()
	old := stage.Named("count", &counter{})
	if _, err := old.Process(ctx, make([]meter.Measurement, 3), nil); err != nil {
		t.Fatal(err)
	}
	// one named stage's state reaches the stage of that name in a chain
	fresh := &counter{}
	next := stage.Chain(stage.Named("other", &counter{}), stage.Named("count", fresh))
	if err := stagestate.Carry(old, next); err != nil {
		t.Fatal(err)
	}
	if fresh.n != 3 {
		t.Errorf("carried count = %d, want 3", fresh.n)
	}
	// and back, from the chain to one named stage
	back := &counter{}
	if err := stagestate.Carry(next, stage.Named("count", back)); err != nil {
		t.Fatal(err)
	}
	if back.n != 3 {
		t.Errorf("count carried back = %d, want 3", back.n)
	}
	if stagestate.Keyed(back) != stage.Stage(back) {
		t.Error("Keyed changed an unnamed stage")
	}
}

func TestCarryLeavesAlone(t *testing.T) {
	c := &counter{n: 5}
	if err := stagestate.Carry(c, c); err != nil || c.n != 5 {
		t.Errorf("Carry to itself: n=%d err=%v", c.n, err)
	}
	if err := stagestate.Carry(nil, c); err != nil || c.n != 5 {
		t.Errorf("Carry from nil: n=%d err=%v", c.n, err)
	}
	bad := &counter{bad: true}
	err := stagestate.Carry(c, bad)
	if err == nil {
		t.Fatal("Carry into a stage that refuses its state: no error")
	}
	t.Log(err)
}
