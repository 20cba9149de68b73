package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func init() { driver.Register("exec", New) }

// Output formats.
const (
	FormatJSON   = "json"
	FormatNagios = "nagios"
)

// DefaultMaxOutput is how many bytes of standard output a collection reads
// when Config.MaxOutput is zero.
const DefaultMaxOutput = 1 << 20

// stderrLimit bounds the standard error kept for error messages.
const stderrLimit = 4 << 10

// waitDelay bounds how long Collect waits for the output pipes after the
// program exited or was killed (a grandchild may hold them open).
const waitDelay = 300 * time.Millisecond

// Config is the configuration of the exec driver; see the package
// documentation for an example.
type Config struct {
	// Argv is the program and its arguments, run without a shell. Argv[0]
	// is looked up in $PATH unless it contains a slash. Required.
	Argv []string `json:"argv"`
	// Env holds variables added to the program's environment (or making
	// it up, with ClearEnv).
	Env map[string]string `json:"env,omitempty"`
	// ClearEnv starts the program with only Env, not the agent's environment.
	ClearEnv bool `json:"clear_env,omitempty"`
	// Dir is the working directory; empty means the agent's.
	Dir string `json:"dir,omitempty"`
	// Format of the standard output: "json" (the default) or "nagios".
	Format string `json:"format,omitempty"`
	// Prefix starts every measurement name, followed by a dot. For
	// "nagios" it defaults to the base name of Argv[0]; for "json" it
	// defaults to none.
	Prefix string `json:"prefix,omitempty"`
	// ResourceID is the resource id of the Nagios measurements, and of
	// JSON lines that do not give one.
	ResourceID string `json:"resource_id,omitempty"`
	// MaxOutput is how many bytes of standard output are read; default
	// DefaultMaxOutput (1 MiB). A program writing more is killed.
	MaxOutput int `json:"max_output,omitempty"`
}

// Driver runs a program on each collection. Make one with New.
type Driver struct {
	cfg  Config
	name string // argv[0], for errors
}

// New is the exec driver's factory: it decodes and checks cfg.
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{Format: FormatJSON, MaxOutput: DefaultMaxOutput}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("exec: config: %w", err)
	}
	if c.Format == FormatNagios && c.Prefix == "" {
		c.Prefix = filepath.Base(c.Argv[0])
	}
	return &Driver{cfg: c, name: c.Argv[0]}, nil
}

func (c *Config) check() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("argv is empty")
	}
	switch c.Format {
	case "":
		c.Format = FormatJSON
	case FormatJSON, FormatNagios:
	default:
		return fmt.Errorf("format %q: want %q or %q", c.Format, FormatJSON, FormatNagios)
	}
	if c.MaxOutput < 0 {
		return fmt.Errorf("max_output %d is negative", c.MaxOutput)
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = DefaultMaxOutput
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env: malformed variable name %q", k)
		}
	}
	if len(c.Prefix) > meter.MaxNameLen/2 {
		return fmt.Errorf("prefix is %d bytes, over the limit of %d", len(c.Prefix), meter.MaxNameLen/2)
	}
	if len(c.ResourceID) > meter.MaxIDLen {
		return fmt.Errorf("resource_id is %d bytes, over the limit of %d", len(c.ResourceID), meter.MaxIDLen)
	}
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		if err != nil {
			return fmt.Errorf("dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("dir %q is not a directory", c.Dir)
		}
	}
	return checkProgram(c.Argv[0], c.Dir)
}

// checkProgram makes sure the program exists and is executable now, so that
// a typo fails when the driver is made rather than on every collection.
func checkProgram(prog, dir string) error {
	if !strings.Contains(prog, "/") {
		if _, err := osexec.LookPath(prog); err != nil {
			return fmt.Errorf("argv[0]: %w", err)
		}
		return nil
	}
	p := prog
	if !filepath.IsAbs(p) && dir != "" {
		p = filepath.Join(dir, p)
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("argv[0]: %w", err)
	case fi.IsDir():
		return fmt.Errorf("argv[0] %q is a directory", prog)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("argv[0] %q is not executable (mode %v)", prog, fi.Mode()&fs.ModePerm)
	}
	return nil
}

// run is what one execution of the program produced.
type run struct {
	stdout   []byte // complete lines only when overflow is set
	stderr   []byte
	overflow bool // stdout went past MaxOutput
	exited   bool // the program exited by itself, with exitCode
	exitCode int
	err      error // why the program did not run, was killed or failed
	done     time.Time
}

// Collect runs the program once, with ctx's deadline as its time limit, and
// parses what it printed. Measurements from the valid lines come back
// together with an error describing the invalid ones.
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec: %s: %w", d.name, err)
	}
	r, started := d.run(ctx)
	if !started {
		return nil, r.err
	}
	var errs []error
	if r.overflow {
		errs = append(errs, fmt.Errorf("exec: %s: output exceeded the limit of %d bytes (max_output): "+
			"the program was killed and only the complete lines in the first %d bytes were read", d.name, d.cfg.MaxOutput, d.cfg.MaxOutput))
	}
	var (
		ms  []meter.Measurement
		err error
	)
	switch d.cfg.Format {
	case FormatNagios:
		ms, err = d.parseNagios(r)
	default:
		ms, err = d.parseJSON(r.stdout, r.done)
		if r.exited && r.exitCode != 0 {
			errs = append(errs, fmt.Errorf("exec: %s exited with status %d%s", d.name, r.exitCode, stderrNote(r.stderr)))
		}
	}
	errs = append(errs, err, r.err)
	return ms, errors.Join(errs...)
}

// run executes the program and waits for it. started is false if it could
// not be started.
func (d *Driver) run(ctx context.Context) (r run, started bool) {
	cmd := osexec.CommandContext(ctx, d.cfg.Argv[0], d.cfg.Argv[1:]...)
	cmd.Dir = d.cfg.Dir
	if d.cfg.ClearEnv || len(d.cfg.Env) > 0 {
		env := []string{}
		if !d.cfg.ClearEnv {
			env = os.Environ()
		}
		keys := make([]string, 0, len(d.cfg.Env))
		for k := range d.cfg.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+d.cfg.Env[k])
		}
		cmd.Env = env
	}
	// A process group of its own, so that a timeout kills the program's
	// children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var killOnce sync.Once
	killGroup := func() {
		killOnce.Do(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	}
	cmd.Cancel = func() error { killGroup(); return nil }
	cmd.WaitDelay = waitDelay

	stdout := &limitedBuffer{limit: d.cfg.MaxOutput}
	stderr := &limitedBuffer{limit: stderrLimit}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return run{err: fmt.Errorf("exec: start %s: %w", d.name, err)}, false
	}
	// Writing past the limit kills the program; set after Start, when
	// cmd.Process is known.
	stdout.setOnOverflow(killGroup)
	err := cmd.Wait()
	r.done = time.Now()
	if errors.Is(err, osexec.ErrWaitDelay) {
		// The program exited, but something it started still holds its
		// output open: that something is in its process group.
		killGroup()
	}
	r.stdout, r.overflow = stdout.contents()
	r.stderr, _ = stderr.contents()
	if r.overflow {
		// The last line was cut short: keep only the complete ones.
		r.stdout = r.stdout[:bytes.LastIndexByte(r.stdout, '\n')+1]
	}

	st := cmd.ProcessState
	r.exited = st.Exited() && !r.overflow
	r.exitCode = st.ExitCode()
	switch {
	case r.exited:
	case ctx.Err() != nil:
		r.err = fmt.Errorf("exec: %s: killed (with its process group) when the collection's ctx ended: %w", d.name, ctx.Err())
	case r.overflow:
		// Killed by us; Collect says why.
	default:
		r.err = fmt.Errorf("exec: %s: %v%s", d.name, err, stderrNote(r.stderr))
	}
	return r, true
}

// stderrNote quotes the start of what the program wrote to standard error.
func stderrNote(b []byte) string {
	s := strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("?"))))
	if s == "" {
		return ""
	}
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return fmt.Sprintf(" (stderr: %q)", s)
}

// limitedBuffer keeps the first limit bytes written to it and discards the
// rest, calling onOverflow once when the limit is passed. os/exec writes to
// it from its own goroutine.
type limitedBuffer struct {
	mu         sync.Mutex
	buf        bytes.Buffer
	limit      int
	overflow   bool
	onOverflow func()
}

func (b *limitedBuffer) setOnOverflow(f func()) {
	b.mu.Lock()
	b.onOverflow = f
	over := b.overflow
	b.mu.Unlock()
	if over {
		f()
	}
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.mu.Lock()
	var call func()
	if room := b.limit - b.buf.Len(); len(p) > room {
		p = p[:room]
		if !b.overflow {
			b.overflow = true
			call = b.onOverflow
		}
	}
	b.buf.Write(p)
	b.mu.Unlock()
	if call != nil {
		call()
	}
	return n, nil
}

func (b *limitedBuffer) contents() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes()), b.overflow
}

// fullName joins the configured prefix and a name.
func (d *Driver) fullName(name string) string {
	if d.cfg.Prefix == "" {
		return name
	}
	return d.cfg.Prefix + "." + name
}
