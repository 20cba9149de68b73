package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// store is the store of the reference sink: it keeps copies of what it
// takes, each with an id, refuses measurements whose unit is "refuse-me",
// and can be stalled.
type store struct {
	mu       sync.Mutex
	got      []meter.Measurement // each with label "id"
	stall    chan struct{}       // non-nil while stalled
	dedupe   bool                // keep one copy per id
	receipts map[string]int      // batch id -> position held
}

func (st *store) stalled() chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stall
}

func (st *store) add(m meter.Measurement, id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dedupe {
		for _, g := range st.got {
			if v, _ := g.Label("id"); v == id {
				return
			}
		}
	}
	m.Labels = append(slices.Clone(m.Labels), meter.Label{Key: "id", Value: id})
	st.got = append(st.got, m)
}

// fault is how a sink breaks its contract; "" keeps it.
type fault string

// ref is the reference sink, and, with a fault, a broken one.
type ref struct {
	st       *store
	fault    fault
	closed   bool
	closedCh chan struct{}
	retained [][]meter.Measurement // fault "retains": what it stores
	hang     chan struct{}         // released by the test
	seq      int                   // for random ids
}

func (r *ref) Write(ctx context.Context, batch []meter.Measurement) error {
	r.seq++
	n := r.seq
	return r.write(ctx, batch, func(i int) string { return "w" + strconv.Itoa(n) + "/" + strconv.Itoa(i) })
}

func (r *ref) WriteFrom(ctx context.Context, id sink.BatchID, from int, batch []meter.Measurement) error {
	idOf := func(i int) string { return id.String() + "/" + strconv.Itoa(from+i) }
	switch r.fault {
	case "new ids":
		r.seq++
		n := r.seq
		idOf = func(i int) string { return "w" + strconv.Itoa(n) + "/" + strconv.Itoa(i) }
	case "ignores from":
		idOf = func(i int) string { return id.String() + "/" + strconv.Itoa(i) }
		from = 0
	}
	err := r.write(ctx, batch, idOf)
	if err == nil {
		r.st.mu.Lock()
		switch r.fault {
		case "receipt counts the part":
			r.st.receipts[id.String()] = len(batch)
		default:
			r.st.receipts[id.String()] = from + len(batch)
		}
		r.st.mu.Unlock()
	}
	return err
}

func (r *ref) Stored(_ context.Context, id sink.BatchID) (int, error) {
	if r.fault == "no receipts" {
		return 0, fmt.Errorf("ref: %w", sink.ErrNoReceipts)
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	n := r.st.receipts[id.String()]
	if r.fault == "receipt for every batch" && n == 0 {
		for _, v := range r.st.receipts {
			n = v
		}
	}
	return n, nil
}

func (r *ref) write(ctx context.Context, batch []meter.Measurement, idOf func(int) string) error {
	if r.closed {
		switch r.fault {
		case "write after close succeeds":
			return nil
		case "write after close, own error":
			return errors.New("ref: closed")
		}
		return fmt.Errorf("ref: write: %w", sink.ErrClosed)
	}
	if len(batch) == 0 {
		if r.fault == "refuses empty batch" {
			return errors.New("ref: empty batch")
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		switch r.fault {
		case "hangs on cancelled ctx":
			<-r.hang
		case "permanent on cancelled ctx":
			return sink.Permanent(err)
		default:
			return err
		}
	}
	if ch := r.st.stalled(); ch != nil {
		switch r.fault {
		case "ignores deadline":
			<-ch
		case "nil when stalled":
			return nil
		default:
			select {
			case <-ch:
			case <-ctx.Done():
				if r.fault == "permanent on deadline" {
					return sink.Permanent(ctx.Err())
				}
				return fmt.Errorf("ref: stalled: %w", ctx.Err())
			}
		}
	}
	var rejected []int
	for i, m := range batch {
		if m.Unit == "refuse-me" {
			rejected = append(rejected, i)
		}
	}
	if len(rejected) == len(batch) {
		if r.fault == "stores on permanent error" {
			for i, m := range batch {
				r.st.add(m, idOf(i))
			}
		}
		return sink.Permanent(errors.New("ref: refused"))
	}
	if r.fault == "retains" {
		r.retained = append(r.retained, batch)
	} else {
		for i, m := range batch {
			if !slices.Contains(rejected, i) || r.fault == "stores the rejected" {
				r.st.add(m, idOf(i))
			}
		}
	}
	if r.fault == "drops one" {
		r.st.mu.Lock()
		r.st.got = r.st.got[:len(r.st.got)-1]
		r.st.mu.Unlock()
	}
	switch {
	case len(rejected) == 0:
		return nil
	case r.fault == "unsorted rejected":
		slices.Reverse(rejected)
	case r.fault == "rejected out of range":
		rejected = append(rejected, len(batch))
	case r.fault == "rejects a good one":
		rejected = append([]int{0}, rejected...)
	case r.fault == "permanent for a partial":
		return sink.Permanent(errors.New("ref: refused some"))
	}
	return &sink.PartialError{Rejected: rejected, Err: errors.New("ref: refused some")}
}

func (r *ref) Close(context.Context) error {
	switch r.fault {
	case "close panics twice":
		close(r.closedCh)
	case "close fails twice":
		if r.closed {
			return errors.New("ref: already closed")
		}
	}
	if !r.closed && r.fault == "retains" {
		for _, b := range r.retained {
			for _, m := range b {
				r.st.add(m, "retained")
			}
		}
	}
	r.closed = true
	return nil
}

// harness runs the reference sink with fault f; with ids, the store keeps
// every copy and Harness.ID reads their ids, else it keeps one per id.
func harness(t *testing.T, f fault, ids bool, hang chan struct{}) Harness {
	var st *store
	refused := meter.Measurement{Name: "refused", Kind: meter.Gauge, Unit: "refuse-me", Value: 1,
		Time: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Host: "h"}
	h := Harness{
		New: func(t *testing.T) sink.Sink {
			st = &store{dedupe: !ids, receipts: map[string]int{}}
			if f == "leaks a goroutine" {
				go func() { <-hang }()
			}
			return &ref{st: st, fault: f, closedCh: make(chan struct{}), hang: hang}
		},
		Read: func(*testing.T) []meter.Measurement {
			st.mu.Lock()
			defer st.mu.Unlock()
			return slices.Clone(st.got)
		},
		Normalize: func(m meter.Measurement) meter.Measurement {
			m.Labels = slices.DeleteFunc(m.Labels, func(l meter.Label) bool { return l.Key == "id" })
			return m
		},
		Refused: &refused,
		Stall: func(*testing.T) func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.stall = make(chan struct{})
			ch := st.stall
			return func() {
				st.mu.Lock()
				st.stall = nil
				st.mu.Unlock()
				close(ch)
			}
		},
	}
	if ids {
		h.ID = func(m meter.Measurement) string { v, _ := m.Label("id"); return v }
	}
	return h
}

// failures runs the suite on h and returns the rules that failed, with
// their errors; it does not fail t.
func failures(t *testing.T, h Harness) map[string]error {
	got := map[string]error{}
	var mu sync.Mutex
	t.Run("suite", func(t *testing.T) {
		run(t, h, func(t *testing.T, err error) {
			mu.Lock()
			defer mu.Unlock()
			name := t.Name()
			got[lastElem(name)] = err
		})
	})
	return got
}

func lastElem(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

func names(m map[string]error) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestRunPassesTheReferenceSink(t *testing.T) {
	t.Run("KeepsCopiesWithIDs", func(t *testing.T) { Run(t, harness(t, "", true, nil)) })
	t.Run("KeepsOnePerID", func(t *testing.T) { Run(t, harness(t, "", false, nil)) })
}

func TestRunPassesRecorderAndSkipsWhatItCannotCheck(t *testing.T) {
	var r *sink.Recorder
	h := Harness{
		New:     func(*testing.T) sink.Sink { r = &sink.Recorder{}; return r },
		Read:    func(*testing.T) []meter.Measurement { return r.Measurements() },
		Ordered: true,
	}
	require.Empty(t, failures(t, h))
	Run(t, h)
}

// Each broken sink fails exactly the rules it breaks, with a message that
// says what is wrong.
func TestCatchesBrokenSinks(t *testing.T) {
	for _, tc := range []struct {
		fault fault
		ids   bool
		want  map[string]string // rule -> part of its error
	}{
		{"drops one", true, map[string]string{
			"WriteReadBack": "written, not in the store", "BatchNotRetained": "written, not in the store",
			"PartialError": "must hold the rest", "NamedWriteTwice": "after WriteFrom", "NamedWriteFrom": "in two parts"}},
		{"retains", true, map[string]string{"BatchNotRetained": "overwrote the batch", "WriteReadBack": "after one Write",
			"PartialError": "hold the rest", "NamedWriteTwice": "after WriteFrom", "NamedWriteFrom": "in two parts"}},
		{"refuses empty batch", true, map[string]string{"EmptyBatch": "Write of a nil batch returned ref: empty batch; want nil"}},
		{"permanent on cancelled ctx", true, map[string]string{"CancelledContext": "returned a permanent error"}},
		{"nil when stalled", true, map[string]string{"StalledStore": "returned nil"}},
		{"permanent on deadline", true, map[string]string{"StalledStore": "a timeout is retryable"}},
		{"unsorted rejected", true, map[string]string{"PartialError": "Rejected [3 1] is not strictly increasing"}},
		{"rejected out of range", true, map[string]string{"PartialError": "holds 7, out of range for a batch of 7"}},
		{"rejects a good one", true, map[string]string{"PartialError": "Rejected is [0 1 3], want [1 3]"}},
		{"stores the rejected", true, map[string]string{"PartialError": "in the store, not written"}},
		{"permanent for a partial", true, map[string]string{"PartialError": "want a *sink.PartialError"}},
		{"stores on permanent error", true, map[string]string{"PermanentError": "yet the store holds 2"}},
		{"write after close succeeds", true, map[string]string{"WriteAfterClose": "returned nil"}},
		{"write after close, own error", true, map[string]string{"WriteAfterClose": `"ref: closed", which does not wrap sink.ErrClosed`}},
		{"close panics twice", true, map[string]string{"CloseTwice": "Close panicked: close of closed channel"}},
		{"close fails twice", true, map[string]string{"CloseTwice": "second Close of a sink never written to returned ref: already closed"}},
		{"new ids", true, map[string]string{"NamedWriteTwice": "a new id"}},
		{"new ids", false, map[string]string{"NamedWriteTwice": "must leave one copy"}},
		{"ignores from", true, map[string]string{"NamedWriteFrom": "gave two measurements the id",
			"Receipts": "Stored after WriteFrom(from 2) of 3 measurements returned 3; want 5"}},
		{"ignores from", false, map[string]string{"NamedWriteFrom": "written, not in the store",
			"Receipts": "Stored after WriteFrom(from 2) of 3 measurements returned 3; want 5"}},
		{"receipt counts the part", true, map[string]string{"Receipts": "returned 3; want 5"}},
		{"receipt for every batch", true, map[string]string{"Receipts": "never written, returned (5, <nil>) after batch"}},
		{"no receipts", true, nil},
	} {
		t.Run(string(tc.fault)+"/ids="+strconv.FormatBool(tc.ids), func(t *testing.T) {
			got := failures(t, harness(t, tc.fault, tc.ids, nil))
			require.ElementsMatch(t, names(errMap(tc.want)), names(got), "rules that failed: %v", got)
			for rule, want := range tc.want {
				require.ErrorContains(t, got[rule], want, rule)
			}
		})
	}
}

func errMap(m map[string]string) map[string]error {
	out := map[string]error{}
	for k := range m {
		out[k] = nil
	}
	return out
}

// Sinks that block or leak: the checks must not hang, and the goroutine
// check sees what they left behind.
func TestCatchesHangsAndLeaks(t *testing.T) {
	for _, tc := range []struct {
		fault fault
		want  map[string]string
		leaks bool
	}{
		{"hangs on cancelled ctx", map[string]string{"CancelledContext": "had not returned after 1s"}, true},
		// Its Write returns once the store is released: nothing is left.
		{"ignores deadline", map[string]string{"StalledStore": "ctx deadline of 200ms had not returned after 1.2s"}, false},
		{"leaks a goroutine", nil, true},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			hang := make(chan struct{})
			start := time.Now()
			got := failures(t, harness(t, tc.fault, true, hang))
			close(hang)
			require.Less(t, time.Since(start), 15*time.Second, "the suite itself must not hang")
			if tc.leaks {
				require.ErrorContains(t, got["NoGoroutineLeak"], "still running after Close")
				delete(got, "NoGoroutineLeak")
			}
			require.ElementsMatch(t, names(errMap(tc.want)), names(got), "rules that failed: %v", got)
			for rule, want := range tc.want {
				require.ErrorContains(t, got[rule], want, rule)
			}
		})
	}
}

func TestHarnessMistakes(t *testing.T) {
	got := failures(t, Harness{})
	require.ErrorContains(t, got["suite"], "Harness.New is nil")

	got = failures(t, Harness{New: func(*testing.T) sink.Sink { return nil }})
	require.ErrorContains(t, got["New"], "nil sink")

	got = failures(t, Harness{New: func(*testing.T) sink.Sink { panic("no server") }})
	require.ErrorContains(t, got["New"], "Harness.New panicked: no server")

	// A Stall hook that does not stall: the rule says so.
	h := harness(t, "", true, nil)
	h.Stall = func(*testing.T) func() { return nil }
	got = failures(t, h)
	require.Equal(t, []string{"StalledStore"}, names(got))
	require.ErrorContains(t, got["StalledStore"], "either the Stall hook did not stall the store")
}

func TestCompare(t *testing.T) {
	a := Batch("a")
	h := &Harness{}
	// Order, zones and label order do not matter; values do.
	b := slices.Clone(a)
	slices.Reverse(b)
	b[0].Time = b[0].Time.UTC()
	b[4].Labels = []meter.Label{{Key: "mode", Value: "user"}, {Key: "device", Value: "sda"}} // a[0]
	b[1], b[4] = b[4], b[1]
	require.NoError(t, compare(h, a, b))
	require.ErrorContains(t, compare(&Harness{Ordered: true}, a, b), "in order (Harness.Ordered)")

	c := slices.Clone(a)
	c[2].Value = 7
	err := compare(h, a, c)
	require.ErrorContains(t, err, "written, not in the store:\n\t\"sinktest.a.delta\" delta \"s\" -3.25")
	require.ErrorContains(t, err, "in the store, not written:\n\t\"sinktest.a.delta\" delta \"s\" 7")

	require.ErrorContains(t, compare(h, a, append(slices.Clone(a), a[0])), "in the store, not written")
	require.ErrorContains(t, compare(h, a, a[1:]), "holds 4 measurement(s), want the 5 written")

	for _, m := range slices.Concat(Batch("a"), Batch("b")) {
		require.NoError(t, m.Validate(), m.Name)
	}
}
