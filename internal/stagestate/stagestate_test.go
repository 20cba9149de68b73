package stagestate_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
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

func TestAttrs(t *testing.T) {
	if got := stagestate.Attrs(nil); got != nil {
		t.Errorf("Attrs(nil) = %v, want nil", got)
	}
	attrs := stagestate.Attrs([]stage.StageStats{{Name: "rate", Stats: stage.Stats{In: 4, Out: 3}}, {Name: "#2"}})
	if len(attrs) != 2 || attrs[0].Key != "rate" || attrs[1].Key != "#2" {
		t.Fatalf("Attrs keys: %v", attrs)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("stats", attrs[0])
	if !strings.Contains(b.String(), "rate.in=4 rate.out=3 rate.filtered=0") {
		t.Errorf("stats line %q lacks the stage's counters", b.String())
	}
}
