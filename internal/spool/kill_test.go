package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
)

// The crash-safety rules are checked against a child process (this test
// binary, running TestHelperProcess) that works on a spool and reports each
// step it finished on stdout, and that is killed with SIGKILL in the middle
// of its work.

const helperEnv = "SPOOL_TEST_HELPER"

func env(seq uint64, n int) *transport.Envelope {
	ms := make([]meter.Measurement, n)
	for i := range ms {
		ms[i] = meter.Measurement{Name: "m", Kind: meter.Gauge, Value: float64(seq), Time: time.Unix(int64(seq), 0)}
	}
	return &transport.Envelope{Version: transport.Version, Tenant: "t", Agent: "a", Seq: seq,
		SentAt: time.Unix(int64(seq), 0), Host: "h", Measurements: ms}
}

func lanesAB() []LaneSpec {
	return []LaneSpec{{Name: "a", Bucket: []string{"lanes", "a"}}, {Name: "b", Bucket: []string{"lanes", "b"}}}
}

var metaBucket = []string{"meta"}

func policy(name string) SyncPolicy {
	switch name {
	case "never":
		return SyncNever
	case "every":
		return SyncEvery(5 * time.Millisecond)
	}
	return SyncAlways
}

// TestHelperProcess is the child. It does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("the child process of the kill tests")
	}
	dir := os.Getenv("SPOOL_DIR")
	pol := policy(os.Getenv("SPOOL_SYNC"))
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	fail := func(err error) {
		say("error %v", err)
		os.Exit(2)
	}
	switch mode {
	case "append":
		// Appends forever, each batch with its seq as metadata, in a spool
		// bounded so that the oldest batches are dropped all along.
		s, err := Open(Layout{Path: filepath.Join(dir, "s.spool"), Lanes: lanesAB()}, Config{MaxBytes: 4096, Sync: pol})
		if err != nil {
			fail(err)
		}
		for seq := uint64(1); ; seq++ {
			_, err := s.Append(env(seq, 1+int(seq%4)), func(tx Tx) error {
				return tx.Put(metaBucket, []byte("last"), binary.BigEndian.AppendUint64(nil, seq))
			})
			if err != nil {
				fail(err)
			}
			say("appended %d", seq)
		}
	case "deliver":
		// Fills one lane, then forgets its batches from four goroutines,
		// each one out of order with the others.
		lay := Layout{Path: filepath.Join(dir, "s.spool"), Lanes: []LaneSpec{{Name: "one", Bucket: []string{"batches"}}}}
		if os.Getenv("SPOOL_MARKS") != "" {
			lay.Marks = filepath.Join(dir, "s.marks")
		}
		s, err := Open(lay, Config{Sync: pol})
		if err != nil {
			fail(err)
		}
		for seq := uint64(1); seq <= 300; seq++ {
			if _, err := s.Append(env(seq, 1), nil); err != nil {
				fail(err)
			}
		}
		say("filled")
		l := s.Lane("one")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					e, ok := l.Next(context.Background())
					if !ok {
						return
					}
					time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
					if err := l.Done(e.ID); err != nil {
						fail(err)
					}
					say("done %d", e.ID)
				}
			})
		}
		wg.Wait()
	case "lanes":
		// Two lanes with marks, each delivered by its own goroutine at its
		// own pace: b delivers one batch for every three of a's, counted
		// rather than timed, so that a loaded machine (fsync taking longer
		// than either lane's work) cannot bring them level.
		lay := Layout{Path: filepath.Join(dir, "s.spool"), Marks: filepath.Join(dir, "s.marks"), Lanes: lanesAB()}
		s, err := Open(lay, Config{Sync: pol})
		if err != nil {
			fail(err)
		}
		for seq := uint64(1); seq <= 200; seq++ {
			if _, err := s.Append(env(seq, 1), nil); err != nil {
				fail(err)
			}
		}
		say("filled")
		var wg sync.WaitGroup
		var aDone atomic.Int64
		for i, name := range []string{"a", "b"} {
			l := s.Lane(name)
			wg.Go(func() {
				for n := int64(0); ; n++ {
					e, ok := l.Next(context.Background())
					if !ok {
						return
					}
					time.Sleep(100 * time.Microsecond)
					for i == 1 && aDone.Load() < 3*(n+1) {
						time.Sleep(100 * time.Microsecond)
					}
					if err := l.Done(e.ID); err != nil {
						fail(err)
					}
					if i == 0 {
						aDone.Add(1)
					}
					say("done %s %d", name, e.ID)
				}
			})
		}
		wg.Wait()
	case "hold":
		s, err := Open(Layout{Path: filepath.Join(dir, "s.spool"), Lanes: lanesAB()}, Config{Sync: pol})
		if err != nil {
			fail(err)
		}
		_ = s
		say("open")
		time.Sleep(time.Minute)
	}
}

// child runs the helper in mode and returns its output lines as they come.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, mode, dir string, env ...string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode, "SPOOL_DIR="+dir), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, lines: make(chan string, 1<<16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return c
}

// until reads lines until one satisfies ok, failing on an error line.
func (c *child) until(t *testing.T, ok func(line string) bool) {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, open := <-c.lines:
			require.True(t, open, "the child ended early")
			require.False(t, strings.HasPrefix(l, "error"), l)
			if ok(l) {
				return
			}
		case <-deadline:
			t.Fatal("the child did not get there in time")
		}
	}
}

// kill sends SIGKILL, waits for the child, and returns the lines it wrote
// before dying.
func (c *child) kill(t *testing.T) []string {
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
	var rest []string
	for l := range c.lines {
		require.False(t, strings.HasPrefix(l, "error"), l)
		rest = append(rest, l)
	}
	return rest
}

func num(line, prefix string) (uint64, bool) {
	v, ok := strings.CutPrefix(line, prefix+" ")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// seqs reads the Seq of every batch in l, oldest first.
func seqs(t *testing.T, l *Lane) []uint64 {
	l.s.mu.Lock()
	ids := make([]uint64, 0, len(l.entries))
	for _, e := range l.entries {
		ids = append(ids, e.id)
	}
	l.s.mu.Unlock()
	var out []uint64
	for _, id := range ids {
		_, seq, err := l.Read(id, nil)
		require.NoError(t, err)
		out = append(out, seq)
	}
	return out
}

// Killed in the middle of appends, the spool holds for each lane an unbroken
// run of batches ending with the one its metadata names (batch and metadata
// in one transaction; the oldest dropped in that transaction too, within the
// bound), and everything Append returned for is there.
func TestKilledWhileAppendingKeepsBatchAndMetadataTogether(t *testing.T) {
	for _, pol := range []string{"always", "every", "never"} {
		t.Run(pol, func(t *testing.T) {
			dir := t.TempDir()
			c := startChild(t, "append", dir, "SPOOL_SYNC="+pol)
			var reported uint64
			c.until(t, func(l string) bool {
				n, _ := num(l, "appended")
				reported = max(reported, n)
				return n >= 150
			})
			for _, l := range c.kill(t) {
				if n, ok := num(l, "appended"); ok {
					reported = max(reported, n)
				}
			}

			s, err := Open(Layout{Path: filepath.Join(dir, "s.spool"), Lanes: lanesAB()}, Config{MaxBytes: 4096})
			require.NoError(t, err)
			defer s.Close()
			var last uint64
			require.NoError(t, s.View(func(tx Tx) error {
				last = binary.BigEndian.Uint64(tx.Get(metaBucket, []byte("last")))
				return nil
			}))
			require.GreaterOrEqual(t, last, reported, "every append that returned is on disk")
			require.LessOrEqual(t, last, reported+1, "at most the one append under way when killed")
			for _, name := range []string{"a", "b"} {
				l := s.Lane(name)
				got := seqs(t, l)
				require.NotEmpty(t, got)
				require.Equal(t, last, got[len(got)-1], "lane %s ends with the batch the metadata names", name)
				for i := 1; i < len(got); i++ {
					require.Equal(t, got[i-1]+1, got[i], "lane %s: only the oldest were dropped: %v", name, got)
				}
				require.Greater(t, got[0], uint64(1), "the bound dropped the oldest")
				require.LessOrEqual(t, l.bytes, int64(4096), "within the bound")
				n, _ := l.Pending()
				require.Equal(t, len(got), n)
			}
		})
	}
}

// ids lists the ids of the batches pending in the spool of dir.
func pendingIDs(t *testing.T, dir string, marks bool) []uint64 {
	lay := Layout{Path: filepath.Join(dir, "s.spool"), Lanes: []LaneSpec{{Name: "one", Bucket: []string{"batches"}}}}
	if marks {
		lay.Marks = filepath.Join(dir, "s.marks")
	}
	s, err := Open(lay, Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	l := s.Lane("one")
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	var ids []uint64
	for _, e := range l.entries {
		require.True(t, e.doubt, "a batch from an earlier run is in doubt")
		ids = append(ids, e.id)
	}
	return ids
}

func copyDir(t *testing.T, from string) string {
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
	return to
}

// Killed while four goroutines forget batches out of order, the spool
// holds every batch not forgotten, and none whose Done returned: deleted
// at once, or marked in the marks file. Losing the marks file brings back
// marked batches, for delivery again, and loses none.
func TestKilledWhileDeliveringOutOfOrder(t *testing.T) {
	for _, marks := range []bool{false, true} {
		t.Run(fmt.Sprintf("marks=%v", marks), func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"SPOOL_SYNC=never"}
			if marks {
				env = append(env, "SPOOL_MARKS=1")
			}
			c := startChild(t, "deliver", dir, env...)
			done := map[uint64]bool{}
			var order []uint64
			c.until(t, func(l string) bool {
				if id, ok := num(l, "done"); ok {
					done[id] = true
					order = append(order, id)
				}
				return len(done) >= 100
			})
			for _, l := range c.kill(t) {
				if id, ok := num(l, "done"); ok {
					done[id] = true
					order = append(order, id)
				}
			}
			require.Less(t, len(done), 300, "killed before the end")
			require.False(t, slices.IsSorted(order), "batches were forgotten out of order")

			var lost []uint64
			withoutMarks := copyDir(t, dir)
			got := pendingIDs(t, dir, marks)
			for id := uint64(0); id < 300; id++ {
				switch {
				case done[id]:
					require.NotContains(t, got, id, "a batch forgotten before the kill stays forgotten")
				case !slices.Contains(got, id):
					lost = append(lost, id)
				}
			}
			// A batch whose Done finished but was not yet reported: one per goroutine at most.
			require.LessOrEqual(t, len(lost), 4, "no batch lost: %v", lost)
			if !marks {
				return
			}
			require.NoError(t, os.Remove(filepath.Join(withoutMarks, "s.marks")))
			again := pendingIDs(t, withoutMarks, true)
			require.Subset(t, again, got, "losing the marks loses no batch")
			require.Greater(t, len(again), len(got), "marked batches come back for delivery")
			for _, id := range again {
				require.True(t, slices.Contains(got, id) || done[id] || slices.Contains(lost, id),
					"only marked batches come back: %d", id)
			}
		})
	}
}

// One process uses a spool at a time: a second is told the file is in use,
// naming it; once the first is killed, the spool opens.
func TestOneProcessPerSpool(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "hold", dir)
	c.until(t, func(l string) bool { return l == "open" })
	path := filepath.Join(dir, "s.spool")
	_, err := Open(Layout{Path: path, Lanes: lanesAB()}, Config{})
	require.EqualError(t, err, "spool: "+path+" is in use by another process")
	c.kill(t)
	s, err := Open(Layout{Path: path, Lanes: lanesAB()}, Config{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice")
}

// Killed while two lanes deliver at their own pace, each lane comes back
// at its own position: what it delivered stays delivered, what it had not
// is still there, whatever the other lane did.
func TestKilledWhileLanesDeliverAtTheirOwnPace(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "lanes", dir, "SPOOL_SYNC=always")
	done := map[string]map[uint64]bool{"a": {}, "b": {}}
	record := func(l string) {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "done" {
			id, err := strconv.ParseUint(f[2], 10, 64)
			require.NoError(t, err)
			done[f[1]][id] = true
		}
	}
	c.until(t, func(l string) bool {
		record(l)
		return len(done["a"]) >= 120
	})
	for _, l := range c.kill(t) {
		record(l)
	}
	require.Less(t, len(done["b"]), len(done["a"]), "the lanes were at different positions")
	require.Less(t, len(done["a"]), 200)

	s := open(t, Layout{Path: filepath.Join(dir, "s.spool"), Marks: filepath.Join(dir, "s.marks"), Lanes: lanesAB()}, Config{})
	for _, name := range []string{"a", "b"} {
		l := s.Lane(name)
		l.s.mu.Lock()
		pending := map[uint64]bool{}
		for _, e := range l.entries {
			pending[e.id] = true
		}
		l.s.mu.Unlock()
		missing := 0
		for id := uint64(0); id < 200; id++ {
			if done[name][id] {
				require.False(t, pending[id], "lane %s: batch %d was delivered before the kill", name, id)
			} else if !pending[id] {
				missing++ // its Done returned but was not reported yet
			}
		}
		require.LessOrEqual(t, missing, 1, "lane %s lost no batch", name)
		require.Equal(t, 200-len(done[name])-missing, len(pending))
	}
}
