package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync/atomic"
	"unicode/utf8"
)

// Limits of a key file.
const (
	// MaxKeysPerTenant is how many keys a tenant holds at most: its current
	// key and, during a rotation, the next one.
	MaxKeysPerTenant = 2
	// MaxTenantLen is the longest tenant id, in bytes.
	MaxTenantLen = 255
	// MaxKeyFileSize is the largest key file read, in bytes.
	MaxKeyFileSize = 16 << 20
)

// KeyFile is the content of a key file: the keys of each tenant. The
// publisher's file holds every tenant; an agent's holds its own tenant
// only, usually with one key (see KeyFile.Export).
//
//	{"tenants": {"acme": {"keys": [
//	    {"id": "k1", "key": "<32 bytes, standard base64>", "created": "2026-11-21T10:00:00Z"}]}}}
type KeyFile struct {
	Tenants map[string]*TenantKeys `json:"tenants"`
}

// TenantKeys are the keys of one tenant, oldest first.
type TenantKeys struct {
	Keys []Key `json:"keys"`
}

// ParseKeyFile parses and checks the JSON of a key file: unknown fields,
// tenant ids that are empty, longer than MaxTenantLen or not UTF-8, key ids
// that are malformed or repeated within a tenant, keys that are not
// KeySize bytes and tenants with more than MaxKeysPerTenant keys are all
// errors. Errors never include key material.
func ParseKeyFile(b []byte) (*KeyFile, error) {
	if len(b) > MaxKeyFileSize {
		return nil, fmt.Errorf("seal: key file of %d bytes, over the limit of %d", len(b), MaxKeyFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var kf KeyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("seal: key file: %w", scrub(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("seal: key file: data after the JSON object")
	}
	if err := kf.Check(); err != nil {
		return nil, err
	}
	return &kf, nil
}

// scrub drops what a JSON error may quote of the input (a key's bytes), and
// keeps its kind and offset.
func scrub(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: wrong type at byte %d (want %s)", te.Field, te.Offset, te.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated")
	}
	s := err.Error()
	if len(s) > 120 || !utf8.ValidString(s) {
		return errors.New("malformed JSON")
	}
	return err // such as: json: unknown field "x", illegal base64 data at input byte 4
}

// Check reports the first thing wrong with kf (see ParseKeyFile).
func (kf *KeyFile) Check() error {
	for _, t := range kf.TenantIDs() {
		if t == "" || len(t) > MaxTenantLen || !utf8.ValidString(t) {
			return fmt.Errorf("seal: key file: tenant id %q: want 1 to %d bytes of UTF-8", t, MaxTenantLen)
		}
		tk := kf.Tenants[t]
		if tk == nil {
			return fmt.Errorf("seal: key file: tenant %q: null", t)
		}
		if len(tk.Keys) > MaxKeysPerTenant {
			return fmt.Errorf("seal: key file: tenant %q has %d keys, at most %d (revoke one)", t, len(tk.Keys), MaxKeysPerTenant)
		}
		for i, k := range tk.Keys {
			if err := checkKeyID(k.ID); err != nil {
				return fmt.Errorf("seal: key file: tenant %q: %w", t, err)
			}
			if len(k.Secret) != KeySize {
				return fmt.Errorf("seal: key file: tenant %q, key %q: %d bytes, want %d", t, k.ID, len(k.Secret), KeySize)
			}
			for _, p := range tk.Keys[:i] {
				if p.ID == k.ID {
					return fmt.Errorf("seal: key file: tenant %q: key id %q twice", t, k.ID)
				}
			}
		}
	}
	return nil
}

// TenantIDs returns the tenants of kf, sorted.
func (kf *KeyFile) TenantIDs() []string {
	ids := make([]string, 0, len(kf.Tenants))
	for t := range kf.Tenants {
		ids = append(ids, t)
	}
	sort.Strings(ids)
	return ids
}

// Newest returns tenant's newest key: the one created last, the later in
// the file when two were created at the same time.
func (kf *KeyFile) Newest(tenant string) (Key, error) {
	tk := kf.Tenants[tenant]
	if tk == nil {
		return Key{}, fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
	}
	if len(tk.Keys) == 0 {
		return Key{}, fmt.Errorf("seal: tenant %q has no key", tenant)
	}
	best := tk.Keys[0]
	for _, k := range tk.Keys[1:] {
		if !k.Created.Before(best.Created) {
			best = k
		}
	}
	return best, nil
}

// Export returns a key file for an agent of tenant: the tenant with its
// key keyID only, or its newest key when keyID is empty.
func (kf *KeyFile) Export(tenant, keyID string) (*KeyFile, error) {
	var k Key
	if keyID == "" {
		var err error
		if k, err = kf.Newest(tenant); err != nil {
			return nil, err
		}
	} else {
		tk := kf.Tenants[tenant]
		if tk == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
		}
		i := slices.IndexFunc(tk.Keys, func(k Key) bool { return k.ID == keyID })
		if i < 0 {
			return nil, fmt.Errorf("%w: tenant %q has no key %q", ErrUnknownKey, tenant, keyID)
		}
		k = tk.Keys[i]
	}
	k.Secret = slices.Clone(k.Secret)
	return &KeyFile{Tenants: map[string]*TenantKeys{tenant: {Keys: []Key{k}}}}, nil
}

// Marshal returns the JSON of kf, indented, tenants sorted.
func (kf *KeyFile) Marshal() ([]byte, error) {
	if kf.Tenants == nil {
		kf = &KeyFile{Tenants: map[string]*TenantKeys{}}
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("seal: marshal key file: %w", err)
	}
	return append(b, '\n'), nil
}

// ErrKeyFileMode is wrapped by the error LoadKeyFile returns for a file that
// others than its owner may read or write.
var ErrKeyFileMode = errors.New("seal: key file permissions too open")

// LoadKeyFile reads and parses the key file at path. It refuses a file that
// is not a regular file, or whose mode lets its group or others read or
// write it: the error names the mode found and the command that fixes it.
func LoadKeyFile(path string) (*KeyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	defer f.Close()
	// The checks are made on the file opened, not on the path, so that the
	// file cannot be swapped between check and read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, which lets group or others read or write it; run: chmod 600 %s",
			ErrKeyFileMode, path, perm, path)
	}
	if fi.Size() > MaxKeyFileSize {
		return nil, fmt.Errorf("seal: key file %s: %d bytes, over the limit of %d", path, fi.Size(), MaxKeyFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("seal: read key file %s: %w", path, err)
	}
	kf, err := ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return kf, nil
}

// SaveKeyFile writes kf to path with mode 0600, atomically: it writes a
// temporary file in the same directory, syncs it and renames it over path.
func SaveKeyFile(path string, kf *KeyFile) error {
	if err := kf.Check(); err != nil {
		return err
	}
	b, err := kf.Marshal()
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("seal: save key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("seal: save key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("seal: save key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("seal: save key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal: save key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("seal: save key file: %w", err)
	}
	return nil
}

// SealerFor loads the key file at path (see LoadKeyFile) and returns a
// Sealer for tenant with the tenant's newest key: what an agent needs.
func SealerFor(path, tenant string) (*Sealer, error) {
	kf, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := kf.Newest(tenant)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return NewSealer(tenant, k)
}

// KeyStore finds tenant keys for an Opener. Key returns the key of tenant
// with id keyID, an error wrapping ErrUnknownTenant when the tenant is not
// known, or one wrapping ErrUnknownKey when the tenant has no such key
// (revoked, or never made). It is called concurrently.
type KeyStore interface {
	Key(tenant, keyID string) (Key, error)
}

// Keyring is a KeyStore holding the keys of a KeyFile in memory. Reload
// replaces them while it is in use.
type Keyring struct {
	path string
	keys atomic.Pointer[map[string][]Key]
}

var _ KeyStore = (*Keyring)(nil)

// NewKeyring returns a Keyring holding a copy of kf's keys.
func NewKeyring(kf *KeyFile) (*Keyring, error) {
	if err := kf.Check(); err != nil {
		return nil, err
	}
	kr := &Keyring{}
	kr.set(kf)
	return kr, nil
}

// OpenKeyring loads the key file at path (see LoadKeyFile) into a Keyring
// whose Reload reads that file again.
func OpenKeyring(path string) (*Keyring, error) {
	kf, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{path: path}
	kr.set(kf)
	return kr, nil
}

func (kr *Keyring) set(kf *KeyFile) {
	m := make(map[string][]Key, len(kf.Tenants))
	for t, tk := range kf.Tenants {
		ks := make([]Key, len(tk.Keys))
		for i, k := range tk.Keys {
			k.Secret = slices.Clone(k.Secret)
			ks[i] = k
		}
		m[t] = ks
	}
	kr.keys.Store(&m)
}

// Reload reads the Keyring's file again and, when it loads, replaces the
// keys: a key added since is accepted and a key revoked since is refused
// from then on. On error the keys in use stay. A Keyring made by
// NewKeyring has no file and Reload fails.
func (kr *Keyring) Reload() error {
	if kr.path == "" {
		return errors.New("seal: reload: the keyring has no file")
	}
	kf, err := LoadKeyFile(kr.path)
	if err != nil {
		return err
	}
	kr.set(kf)
	return nil
}

// Key implements KeyStore.
func (kr *Keyring) Key(tenant, keyID string) (Key, error) {
	ks, ok := (*kr.keys.Load())[tenant]
	if !ok {
		return Key{}, ErrUnknownTenant
	}
	for _, k := range ks {
		if k.ID == keyID {
			return k, nil
		}
	}
	return Key{}, ErrUnknownKey
}

// Tenants returns the tenants the Keyring holds keys for, sorted.
func (kr *Keyring) Tenants() []string {
	m := *kr.keys.Load()
	ids := make([]string, 0, len(m))
	for t := range m {
		ids = append(ids, t)
	}
	sort.Strings(ids)
	return ids
}
