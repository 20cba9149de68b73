// Command meterctl manages the tenant key file of a meterkit publisher, and
// exports agent key files from it.
//
//	meterctl -keys /etc/meterkit/keys.json tenant create acme
//	meterctl -keys /etc/meterkit/keys.json tenant list
//	meterctl -keys /etc/meterkit/keys.json key export -tenant acme -out agent.key
//	meterctl -keys /etc/meterkit/keys.json key rotate -tenant acme
//	meterctl -keys /etc/meterkit/keys.json key revoke -tenant acme -id k1
//	meterctl -keys /etc/meterkit/keys.json tenant delete acme
//
// The key file is created with mode 0600, and meterctl refuses to read one
// that group or others may read. It never prints a key: key export writes
// the agent's key file (mode 0600) to -out, and to standard output only
// when asked with -out -. A publisher reads the file at start (-keys); after
// a change, restart it. See package transport/seal for the rotation
// procedure.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meterkit/meter/transport/seal"
)

const usage = `usage: meterctl [-keys FILE] COMMAND

commands:
  tenant create NAME                      add a tenant with a new random key
  tenant list                             list tenants and key ids (never keys)
  tenant delete NAME                      remove a tenant and its keys
  key rotate -tenant NAME [-id ID]        add a new key beside the current one
  key revoke -tenant NAME -id ID          remove a key
  key export -tenant NAME [-id ID] -out FILE
                                          write an agent key file with the tenant's
                                          newest key (or key ID); -out - prints it
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "meterctl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bad usage")

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("meterctl", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage); fl.PrintDefaults() }
	path := fl.String("keys", "keys.json", "the publisher's key file")
	if err := fl.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	args = fl.Args()
	if len(args) < 2 {
		return fmt.Errorf("%w: want a command", errUsage)
	}
	c := &ctl{path: *path, stdout: stdout}
	switch args[0] + " " + args[1] {
	case "tenant create":
		return c.tenantCreate(args[2:])
	case "tenant list":
		return c.tenantList(args[2:])
	case "tenant delete":
		return c.tenantDelete(args[2:])
	case "key rotate", "key revoke", "key export":
		return c.key(args[1], args[2:])
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(args[:2], " "))
}

type ctl struct {
	path   string
	stdout io.Writer
}

// load reads the key file; a missing one is empty when create is true.
func (c *ctl) load(create bool) (*seal.KeyFile, error) {
	kf, err := seal.LoadKeyFile(c.path)
	if create && errors.Is(err, fs.ErrNotExist) {
		return &seal.KeyFile{Tenants: map[string]*seal.TenantKeys{}}, nil
	}
	if err != nil {
		return nil, err
	}
	if kf.Tenants == nil {
		kf.Tenants = map[string]*seal.TenantKeys{}
	}
	return kf, nil
}

func (c *ctl) tenantCreate(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: tenant create NAME", errUsage)
	}
	name := args[0]
	kf, err := c.load(true)
	if err != nil {
		return err
	}
	if _, ok := kf.Tenants[name]; ok {
		return fmt.Errorf("tenant %q exists", name)
	}
	k, err := seal.NewKey("k1")
	if err != nil {
		return err
	}
	kf.Tenants[name] = &seal.TenantKeys{Keys: []seal.Key{k}}
	if err := seal.SaveKeyFile(c.path, kf); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created tenant %s with key %s in %s\n", name, k.ID, c.path)
	return nil
}

func (c *ctl) tenantList(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: tenant list takes no arguments", errUsage)
	}
	kf, err := c.load(false)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tKEY ID\tCREATED")
	for _, t := range kf.TenantIDs() {
		keys := kf.Tenants[t].Keys
		if len(keys) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\n", t)
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t, k.ID, k.Created.UTC().Format(time.RFC3339))
		}
	}
	return tw.Flush()
}

func (c *ctl) tenantDelete(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: tenant delete NAME", errUsage)
	}
	kf, err := c.load(false)
	if err != nil {
		return err
	}
	if _, ok := kf.Tenants[args[0]]; !ok {
		return fmt.Errorf("no tenant %q in %s", args[0], c.path)
	}
	delete(kf.Tenants, args[0])
	if err := seal.SaveKeyFile(c.path, kf); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted tenant %s from %s; restart the publisher\n", args[0], c.path)
	return nil
}

func (c *ctl) key(cmd string, args []string) error {
	fl := flag.NewFlagSet("key "+cmd, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	tenant := fl.String("tenant", "", "tenant")
	id := fl.String("id", "", "key id")
	out := fl.String("out", "", "agent key file to write (export); - for standard output")
	if err := fl.Parse(args); err != nil {
		return fmt.Errorf("%w: key %s: %v", errUsage, cmd, err)
	}
	if *tenant == "" || fl.NArg() != 0 {
		return fmt.Errorf("%w: key %s needs -tenant NAME and no arguments", errUsage, cmd)
	}
	kf, err := c.load(false)
	if err != nil {
		return err
	}
	tk, ok := kf.Tenants[*tenant]
	if !ok {
		return fmt.Errorf("no tenant %q in %s", *tenant, c.path)
	}
	switch cmd {
	case "rotate":
		if len(tk.Keys) >= seal.MaxKeysPerTenant {
			return fmt.Errorf("tenant %q already holds %d keys (%s): revoke the old one first", *tenant, len(tk.Keys), keyIDs(tk))
		}
		newID := *id
		if newID == "" {
			newID = nextID(tk)
		}
		if slices.ContainsFunc(tk.Keys, func(k seal.Key) bool { return k.ID == newID }) {
			return fmt.Errorf("tenant %q already has key %q", *tenant, newID)
		}
		k, err := seal.NewKey(newID)
		if err != nil {
			return err
		}
		tk.Keys = append(tk.Keys, k)
		if err := seal.SaveKeyFile(c.path, kf); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added key %s to tenant %s (keys: %s); restart the publisher, then export the key to the agents\n", k.ID, *tenant, keyIDs(tk))
	case "revoke":
		if *id == "" {
			return fmt.Errorf("%w: key revoke needs -id", errUsage)
		}
		i := slices.IndexFunc(tk.Keys, func(k seal.Key) bool { return k.ID == *id })
		if i < 0 {
			return fmt.Errorf("tenant %q has no key %q (keys: %s)", *tenant, *id, keyIDs(tk))
		}
		tk.Keys = slices.Delete(tk.Keys, i, i+1)
		if err := seal.SaveKeyFile(c.path, kf); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "revoked key %s of tenant %s (keys left: %s); restart the publisher\n", *id, *tenant, keyIDs(tk))
	case "export":
		if *out == "" {
			return fmt.Errorf("%w: key export needs -out FILE (or -out - to print the key)", errUsage)
		}
		ex, err := kf.Export(*tenant, *id)
		if err != nil {
			return err
		}
		if *out == "-" {
			b, err := ex.Marshal()
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(b)
			return err
		}
		if err := seal.SaveKeyFile(*out, ex); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "wrote key %s of tenant %s to %s (mode 0600)\n", ex.Tenants[*tenant].Keys[0].ID, *tenant, *out)
	}
	return nil
}

func keyIDs(tk *seal.TenantKeys) string {
	if len(tk.Keys) == 0 {
		return "none"
	}
	ids := make([]string, len(tk.Keys))
	for i, k := range tk.Keys {
		ids[i] = k.ID
	}
	return strings.Join(ids, ", ")
}

// nextID is "k" and one more than the largest number of the tenant's
// "k<number>" key ids.
func nextID(tk *seal.TenantKeys) string {
	n := 0
	for _, k := range tk.Keys {
		if v, err := strconv.Atoi(strings.TrimPrefix(k.ID, "k")); err == nil && strings.HasPrefix(k.ID, "k") && v > n {
			n = v
		}
	}
	return "k" + strconv.Itoa(n+1)
}
