package spool

import (
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Lanes that come and go while the spool is open: a consumer removed from
// the configuration leaves its lane detached (kept, counted, no appends),
// and a consumer added, or one that returns, attaches a lane.

// others adds, detached, a lane for each bucket nested under path that no
// lane names.
func (s *Spool) others(path []string) error {
	if len(path) == 0 {
		return nil
	}
	return s.db.View(func(tx *bolt.Tx) error {
		b, _ := bucket(tx, path, false)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(name []byte) error {
			n := string(name)
			if slices.ContainsFunc(s.lanes, func(l *Lane) bool { return l.name == n }) {
				return nil
			}
			s.lanes = append(s.lanes, &Lane{s: s, name: n, bucket: append(slices.Clone(path), n),
				ready: make(chan struct{}, 1), detached: true})
			return nil
		})
	})
}

// Lanes returns the spool's lanes, attached and detached, in the order they
// were opened or attached.
func (s *Spool) Lanes() []*Lane {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lanes)
}

// Attach makes the lane ls names take appends from the next Append on: a
// detached lane of that name is attached again, with the batches it kept; a
// new one is made, with the batches its bucket holds (in doubt). The bucket
// of an existing lane is not changed.
func (s *Spool) Attach(ls LaneSpec) (*Lane, error) {
	if len(ls.Bucket) == 0 {
		return nil, fmt.Errorf("spool %s: lane %q has no bucket", s.path, ls.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lanes {
		if l.name == ls.Name {
			l.detached = false
			return l, nil
		}
	}
	l := &Lane{s: s, name: ls.Name, bucket: slices.Clone(ls.Bucket), ready: make(chan struct{}, 1)}
	opened := time.Now()
	err := load(func() error { return s.db.Update(func(tx *bolt.Tx) error { return l.index(tx, opened) }) })
	if err != nil {
		return nil, fmt.Errorf("spool %s: attach lane %q: %w", s.path, ls.Name, err)
	}
	s.lanes = append(s.lanes, l)
	return l, nil
}

// Detach makes the named lane take no more appends; it keeps its batches,
// which Next still hands out. It reports whether the lane exists.
func (s *Spool) Detach(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lanes {
		if l.name == name {
			l.detached = true
			return true
		}
	}
	return false
}

// Detached reports whether the lane takes no appends.
func (l *Lane) Detached() bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.detached
}
