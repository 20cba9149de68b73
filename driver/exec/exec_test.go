package exec

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

func config(t *testing.T, v any) driver.Config {
	t.Helper()
	c, err := driver.ConfigFrom(v)
	require.NoError(t, err)
	return c
}

func open(t *testing.T, v any) *Driver {
	t.Helper()
	d, err := New(config(t, v))
	require.NoError(t, err)
	return d.(*Driver)
}

func collect(t *testing.T, d *Driver, timeout time.Duration) ([]meter.Measurement, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.Collect(ctx)
}

func byName(ms []meter.Measurement) map[string]meter.Measurement {
	out := map[string]meter.Measurement{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

func TestRegistered(t *testing.T) {
	f, err := driver.Lookup("exec")
	require.NoError(t, err)
	require.NotNil(t, f)
}

func TestJSON(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "good", `
echo '{"name":"queue.depth","value":42,"labels":{"queue":"mail","b":"2"}}'
echo
echo '{"name":"jobs.done","kind":"cumulative","unit":"B","value":1.5e3,"time":"2026-11-21T10:00:00.5Z","resource_id":"r1","project_id":"p","user_id":"u","host":"h"}'
echo "  {\"name\":\"env\",\"value\":$FOO}  "
pwd | sed 's/^/# /' >&2
`)
	d := open(t, map[string]any{"argv": []string{p}, "env": map[string]string{"FOO": "7"}, "dir": dir, "resource_id": "default"})
	before := time.Now()
	ms, err := collect(t, d, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, ms, 3)

	q := ms[0]
	require.Equal(t, "queue.depth", q.Name)
	require.Equal(t, meter.Gauge, q.Kind)
	require.Equal(t, 42.0, q.Value)
	require.Equal(t, "default", q.ResourceID)
	require.Equal(t, []meter.Label{{Key: "b", Value: "2"}, {Key: "queue", Value: "mail"}}, q.Labels)
	require.False(t, q.Time.Before(before))

	j := ms[1]
	require.Equal(t, meter.Measurement{
		Name: "jobs.done", Kind: meter.Cumulative, Unit: "B", Value: 1500,
		Time:       time.Date(2026, 11, 21, 10, 0, 0, 5e8, time.UTC),
		ResourceID: "r1", ProjectID: "p", UserID: "u", Host: "h",
	}, j)

	require.Equal(t, 7.0, ms[2].Value)
}

func TestJSONPrefixAndClearEnv(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "env", `echo "{\"name\":\"n\",\"value\":${FOO:-0}${HOME:+1}}"`)
	d := open(t, map[string]any{"argv": []string{p}, "env": map[string]string{"FOO": "3"}, "clear_env": true, "prefix": "app"})
	ms, err := collect(t, d, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "app.n", ms[0].Name)
	require.Equal(t, 3.0, ms[0].Value, "HOME must not be set with clear_env")
}

func TestJSONMalformedLinesGivePartialResults(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "bad", `
echo '{"name":"ok1","value":1}'
echo 'not json'
echo '{"name":"nokind","kind":"counter","value":1}'
echo '{"value":1}'
echo '{"name":"novalue"}'
echo '{"name":"badtime","value":1,"time":"yesterday"}'
echo '{"name":"extra","value":1,"colour":"red"}'
echo '{"name":"strvalue","value":"1"}'
echo '{"name":"ok2","value":2}'
echo '{"name":"two","value":1} {"name":"objects","value":2}'
`)
	d := open(t, map[string]any{"argv": []string{p}})
	ms, err := collect(t, d, 5*time.Second)
	require.Error(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, "ok1", ms[0].Name)
	require.Equal(t, "ok2", ms[1].Name)
	msg := err.Error()
	for _, want := range []string{
		p + ": output line 2: not a JSON measurement",
		"line 3: \"kind\" \"counter\": want gauge, cumulative or delta",
		"line 4: \"name\" is missing",
		"line 5: \"value\" is missing",
		"line 6: \"time\" \"yesterday\" is not RFC 3339",
		"line 7: not a JSON measurement: json: unknown field \"colour\"",
		"line 8: not a JSON measurement",
		"line 10: not a JSON measurement: more than one value",
	} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "line 1:")
	require.NotContains(t, msg, "line 9:")
}

func TestJSONTooManyMalformedLines(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "bad", `for i in 1 2 3 4 5 6 7 8 9 10 11 12 13; do echo x; done; echo '{"name":"ok","value":1}'`)
	ms, err := collect(t, open(t, map[string]any{"argv": []string{p}}), 5*time.Second)
	require.Len(t, ms, 1)
	require.ErrorContains(t, err, "line 10:")
	require.NotContains(t, err.Error(), "line 11:")
	require.ErrorContains(t, err, "3 more malformed output lines")
}

func TestJSONInvalidMeasurement(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", meter.MaxNameLen+1)
	p := script(t, dir, "bad", `echo '{"name":"`+long+`","value":1}'; echo '{"name":"y","value":1,"labels":{"":"v"}}'`)
	ms, err := collect(t, open(t, map[string]any{"argv": []string{p}}), 5*time.Second)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "line 1: meter: invalid measurement: Name: 256 bytes")
	require.ErrorContains(t, err, "line 2: meter: invalid measurement: Labels[0].Key: empty")
}

func TestJSONExitStatus(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "fail", `echo '{"name":"x","value":1}'; echo 'disk on fire' >&2; exit 4`)
	ms, err := collect(t, open(t, map[string]any{"argv": []string{p}}), 5*time.Second)
	require.Len(t, ms, 1)
	require.ErrorContains(t, err, p+` exited with status 4 (stderr: "disk on fire")`)
}

func TestNagiosStates(t *testing.T) {
	for code, state := range []string{"ok", "warning", "critical", "unknown"} {
		t.Run(state, func(t *testing.T) {
			dir := t.TempDir()
			p := script(t, dir, "check_thing", `
echo "THING `+strings.ToUpper(state)+` - all told | time=12ms;100;200;0; 'used space'=2MB;1:3;@0:4;0;10 rx=123c load=0.5"
exit `+strconv.Itoa(code))
			d := open(t, map[string]any{"argv": []string{p}, "format": "nagios", "resource_id": "web1"})
			ms, err := collect(t, d, 5*time.Second)
			require.NoError(t, err)
			require.Len(t, ms, 5)
			got := byName(ms)

			st := got["check_thing.state"]
			require.Equal(t, meter.Gauge, st.Kind)
			require.Equal(t, float64(code), st.Value)
			require.Equal(t, "web1", st.ResourceID)
			require.Equal(t, []meter.Label{{Key: "state", Value: state}, {Key: "output", Value: "THING " + strings.ToUpper(state) + " - all told"}}, st.Labels)

			tm := got["check_thing.time"]
			require.Equal(t, "s", tm.Unit)
			require.Equal(t, meter.Gauge, tm.Kind)
			require.InDelta(t, 0.012, tm.Value, 1e-12)
			require.Equal(t, []meter.Label{{Key: "warn", Value: "0.1"}, {Key: "crit", Value: "0.2"}, {Key: "min", Value: "0"}}, tm.Labels)

			us := got["check_thing.used space"]
			require.Equal(t, "B", us.Unit)
			require.Equal(t, 2.0*1024*1024, us.Value)
			require.Equal(t, []meter.Label{
				{Key: "warn", Value: "1048576:3145728"}, {Key: "crit", Value: "@0:4194304"},
				{Key: "min", Value: "0"}, {Key: "max", Value: "10485760"},
			}, us.Labels)

			rx := got["check_thing.rx"]
			require.Equal(t, meter.Cumulative, rx.Kind)
			require.Equal(t, "", rx.Unit)
			require.Equal(t, 123.0, rx.Value)

			require.Equal(t, 0.5, got["check_thing.load"].Value)
			for _, m := range ms {
				require.NoError(t, m.Validate())
			}
		})
	}
}

func TestNagiosExitOutsideRange(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "check_x", `echo 'weird'; echo oops >&2; exit 5`)
	ms, err := collect(t, open(t, map[string]any{"argv": []string{p}, "format": "nagios", "prefix": "x"}), 5*time.Second)
	require.ErrorContains(t, err, `exited with status 5, outside the Nagios range 0-3: counted as unknown (stderr: "oops")`)
	require.Len(t, ms, 1)
	require.Equal(t, "x.state", ms[0].Name)
	require.Equal(t, 3.0, ms[0].Value)
	v, _ := ms[0].Label("state")
	require.Equal(t, "unknown", v)
}

func TestNagiosLongOutputAndMalformedPerfdata(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "check_multi", `
echo "DISK OK | /=10GB;;;0;100"
echo "long text line one"
echo "more text | 'it''s'=1us"
echo "/var=20KB;;;;  bad perf=x"
echo "noequals a=1;2;3;4;5;6 b=3 b=4 w=1;x c=U t=5W 'unterminated=1 z=1"
`)
	ms, err := collect(t, open(t, map[string]any{"argv": []string{p}, "format": "nagios", "prefix": "disk"}), 5*time.Second)
	require.Error(t, err)
	got := byName(ms)
	require.Equal(t, 10.0*(1<<30), got["disk./"].Value)
	require.Equal(t, []meter.Label{{Key: "min", Value: "0"}, {Key: "max", Value: "107374182400"}}, got["disk./"].Labels)
	require.InDelta(t, 1e-6, got["disk.it's"].Value, 1e-18)
	require.Equal(t, 20.0*1024, got["disk./var"].Value)
	require.Equal(t, 3.0, got["disk.b"].Value)
	require.Equal(t, "W", got["disk.t"].Unit)
	require.Equal(t, 5.0, got["disk.t"].Value)
	require.NotContains(t, got, "disk.c")
	require.NotContains(t, got, "disk.w")
	require.NotContains(t, got, "disk.a")
	st := got["disk.state"]
	out, _ := st.Label("output")
	require.Equal(t, "DISK OK", out)

	msg := err.Error()
	for _, want := range []string{
		`line 4: perfdata "perf=x": value "x" is not a number`,
		`line 4: perfdata "bad": no '='`,
		`line 5: perfdata "noequals": no '='`,
		`line 5: perfdata "'unterminated=1 z=1": unterminated quoted label`,
		`line 5: perfdata "a=1;2;3;4;5;6": 6 ';'-separated fields after '=', want at most 5`,
		`line 5: perfdata "b=4": label repeats the one on line 5`,
		`line 5: perfdata "w=1;x": warn "x": "x" is not a number`,
	} {
		require.Contains(t, msg, want)
	}
}

func TestNagiosPerfdataErrors(t *testing.T) {
	d := &Driver{cfg: Config{Prefix: "p"}, name: "t"}
	for tok, want := range map[string]string{
		"a=1;2;3;4;5;6": "6 ';'-separated fields",
		"b=1;x":         `warn "x": "x" is not a number`,
		"c=1;;;y":       `min "y": "y" is not a number`,
		"d=1;;@1:z":     `crit "@1:z": "z" is not a number`,
		"=1":            "empty label",
		"''=1":          "empty label",
		"'q'1":          "no '=' after the quoted label",
	} {
		_, err := d.perfMeasurement(tok, run{done: time.Now()})
		require.ErrorContains(t, err, want, tok)
	}
	m, err := d.perfMeasurement("e=1.5e3ms;~:2;10:", run{done: time.Now()})
	require.NoError(t, err)
	require.Equal(t, 1.5, m.Value)
	require.Equal(t, []meter.Label{{Key: "warn", Value: "~:0.002"}, {Key: "crit", Value: "0.01:"}}, m.Labels)
}

func TestSplitPerf(t *testing.T) {
	require.Equal(t, []string{"a=1", "'b c'=2;3", "'d''e f'=4"}, splitPerf("  a=1\t'b c'=2;3  'd''e f'=4 \r"))
	require.Empty(t, splitPerf("   "))
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "slow", `
sleep 60 &
echo $! > "$1/child.pid"
echo $$ > "$1/self.pid"
echo '{"name":"early","value":1}'
sleep 60
echo '{"name":"late","value":1}'
`)
	d := open(t, map[string]any{"argv": []string{p, dir}})
	start := time.Now()
	ms, err := collect(t, d, 500*time.Millisecond)
	took := time.Since(start)
	require.Less(t, took, 2*time.Second)
	require.ErrorContains(t, err, "killed (with its process group) when the collection's ctx ended: context deadline exceeded")
	require.Len(t, ms, 1, "the lines printed before the deadline are kept")
	require.Equal(t, "early", ms[0].Name)

	self, child := readPID(t, filepath.Join(dir, "self.pid")), readPID(t, filepath.Join(dir, "child.pid"))
	require.Eventually(t, func() bool { return !alive(self) && !alive(child) }, 2*time.Second, 20*time.Millisecond,
		"the script (%d) and its child (%d) must be dead", self, child)
}

func TestBackgroundChildHoldingOutput(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "daemonish", `
sleep 60 &
echo $! > "$1/child.pid"
echo '{"name":"x","value":1}'
`)
	d := open(t, map[string]any{"argv": []string{p, dir}})
	start := time.Now()
	ms, err := collect(t, d, 10*time.Second)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Len(t, ms, 1)
	require.NoError(t, err)
	child := readPID(t, filepath.Join(dir, "child.pid"))
	require.Eventually(t, func() bool { return !alive(child) }, 2*time.Second, 20*time.Millisecond)
}

func TestTooMuchOutput(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "chatty", `
i=0
while :; do i=$((i+1)); echo "{\"name\":\"n$i\",\"value\":$i}"; done
`)
	d := open(t, map[string]any{"argv": []string{p}, "max_output": 4096})
	start := time.Now()
	ms, err := collect(t, d, 10*time.Second)
	require.Less(t, time.Since(start), 3*time.Second)
	require.ErrorContains(t, err, "output exceeded the limit of 4096 bytes (max_output): the program was killed")
	require.NotEmpty(t, ms)
	size := 0
	for i, m := range ms {
		require.Equal(t, "n"+strconv.Itoa(i+1), m.Name)
		size += len(`{"name":"","value":}`) + 2*len(strconv.Itoa(i+1)) + 1 + 1
	}
	require.LessOrEqual(t, size, 4096)
	require.Greater(t, size, 4096-40, "every complete line before the limit is read")
}

func TestTooMuchOutputDefaultLimit(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "flood", `head -c 3000000 /dev/zero | tr '\0' 'x'; sleep 60`)
	d := open(t, map[string]any{"argv": []string{p}})
	start := time.Now()
	ms, err := collect(t, d, 10*time.Second)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "output exceeded the limit of 1048576 bytes")
}

func TestNonexistentProgram(t *testing.T) {
	dir := t.TempDir()
	_, err := New(config(t, map[string]any{"argv": []string{filepath.Join(dir, "nope")}}))
	require.ErrorContains(t, err, "exec: config: argv[0]: stat "+filepath.Join(dir, "nope")+": no such file or directory")

	_, err = New(config(t, map[string]any{"argv": []string{"meterkit-no-such-program"}}))
	require.ErrorContains(t, err, `exec: config: argv[0]: exec: "meterkit-no-such-program": executable file not found in $PATH`)

	// A program that disappears after the driver was made.
	p := script(t, dir, "gone", "echo '{}'")
	d := open(t, map[string]any{"argv": []string{p}})
	require.NoError(t, os.Remove(p))
	ms, err := collect(t, d, 5*time.Second)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "exec: start "+p+": ")
	require.ErrorContains(t, err, "no such file or directory")
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "ok", "true")
	notExec := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(notExec, nil, 0o644))
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "exec: config: argv is empty"},
		{map[string]any{"argv": []string{}}, "exec: config: argv is empty"},
		{map[string]any{"argv": []string{""}}, "exec: config: argv is empty"},
		{map[string]any{"argv": []string{p}, "format": "xml"}, `exec: config: format "xml": want "json" or "nagios"`},
		{map[string]any{"argv": []string{p}, "max_output": -1}, "exec: config: max_output -1 is negative"},
		{map[string]any{"argv": []string{p}, "env": map[string]string{"A=B": "x"}}, `exec: config: env: malformed variable name "A=B"`},
		{map[string]any{"argv": []string{p}, "dir": filepath.Join(dir, "nodir")}, "exec: config: dir: stat "},
		{map[string]any{"argv": []string{p}, "dir": p}, "is not a directory"},
		{map[string]any{"argv": []string{dir}}, "is a directory"},
		{map[string]any{"argv": []string{notExec}}, "is not executable (mode -rw-r--r--)"},
		{map[string]any{"argv": []string{p}, "prefix": strings.Repeat("p", 200)}, "exec: config: prefix is 200 bytes"},
		{map[string]any{"argv": []string{p}, "resource_id": strings.Repeat("r", 300)}, "exec: config: resource_id is 300 bytes"},
		{map[string]any{"argv": []string{p}, "timeout": "5s"}, `exec: config: json: unknown field "timeout"`},
	} {
		_, err := New(config(t, tc.cfg))
		require.ErrorContains(t, err, tc.want, "%v", tc.cfg)
	}

	// A relative argv[0] is looked up in dir.
	_, err := New(config(t, map[string]any{"argv": []string{"./ok"}, "dir": dir}))
	require.NoError(t, err)
}

func TestCancelledContext(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "touch", `touch "$1/ran"`)
	d := open(t, map[string]any{"argv": []string{p, dir}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ms, err := d.Collect(ctx)
	require.Empty(t, ms)
	require.ErrorIs(t, err, context.Canceled)
	require.NoFileExists(t, filepath.Join(dir, "ran"))
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	j := script(t, dir, "json", `echo '{"name":"a","value":1}'; echo '{"name":"b","kind":"cumulative","value":2,"labels":{"x":"y"}}'`)
	n := script(t, dir, "check_n", `echo 'N WARNING - hot | temp=71.5degC;70;80 up=3600s'; exit 1`)
	t.Run("json", func(t *testing.T) {
		drivertest.Run(t, New, config(t, map[string]any{"argv": []string{j}}))
	})
	t.Run("nagios", func(t *testing.T) {
		drivertest.Run(t, New, config(t, map[string]any{"argv": []string{n}, "format": "nagios"}))
	})
}

func FuzzParseNagios(f *testing.F) {
	f.Add([]byte("OK | a=1ms;2;3;4;5 'b c'=2KB"), 0)
	f.Add([]byte("x\ny | z=1c\nw=U"), 2)
	f.Add([]byte("'''=1 '=' |||"), 7)
	d := &Driver{cfg: Config{Prefix: "f"}, name: "fuzz"}
	f.Fuzz(func(t *testing.T, out []byte, code int) {
		ms, _ := d.parseNagios(run{stdout: out, exited: true, exitCode: code, done: time.Now()})
		for _, m := range ms {
			if err := m.Validate(); err != nil {
				t.Fatalf("invalid measurement %+v: %v", m, err)
			}
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","value":1,"labels":{"k":"v"}}` + "\n" + `{"name":"b","value":2,"time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"name":"a","value":1e400}`))
	d := &Driver{cfg: Config{}, name: "fuzz"}
	f.Fuzz(func(t *testing.T, out []byte) {
		ms, _ := d.parseJSON(out, time.Now())
		for _, m := range ms {
			if err := m.Validate(); err != nil {
				t.Fatalf("invalid measurement %+v: %v", m, err)
			}
		}
	})
}
