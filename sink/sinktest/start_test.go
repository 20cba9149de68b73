package sinktest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// starter is a Recorder with a Start, right or broken as fault says.
type starter struct {
	sink.Recorder
	fault   string
	started bool
	stop    chan struct{}
}

func (s *starter) Start(context.Context) error {
	switch {
	case s.Closed() && s.fault == "start after close succeeds":
		return nil
	case s.Closed():
		return fmt.Errorf("starter: %w", sink.ErrClosed)
	case s.started && s.fault == "second start fails":
		return errors.New("starter: started already")
	case s.started:
		return nil
	}
	s.started = true
	s.stop = make(chan struct{})
	stop := s.stop
	go func() { <-stop }() // what Start starts, stopped by Close
	return nil
}

func (s *starter) Close(ctx context.Context) error {
	if s.stop != nil && s.fault != "close leaves it running" {
		close(s.stop)
		s.stop = nil
	}
	return s.Recorder.Close(ctx)
}

func TestStartRule(t *testing.T) {
	var leaked []chan struct{}
	defer func() {
		for _, c := range leaked {
			close(c)
		}
	}()
	for _, tc := range []struct {
		fault string
		want  map[string]string
	}{
		{"", nil},
		{"start after close succeeds", map[string]string{"Start": "Start after Close returned nil"}},
		{"second start fails", map[string]string{"Start": "a second Start failed: starter: started already"}},
		{"close leaves it running", map[string]string{"NoGoroutineLeak": "still running after Close"}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			var s *starter
			h := Harness{
				New: func(*testing.T) sink.Sink {
					if s != nil && s.stop != nil {
						leaked = append(leaked, s.stop)
					}
					s = &starter{fault: tc.fault}
					return s
				},
				Read:    func(*testing.T) []meter.Measurement { return s.Measurements() },
				Ordered: true,
			}
			got := failures(t, h)
			if s != nil && s.stop != nil {
				leaked = append(leaked, s.stop)
			}
			require.ElementsMatch(t, names(errMap(tc.want)), names(got), "rules that failed: %v", got)
			for rule, want := range tc.want {
				require.ErrorContains(t, got[rule], want, rule)
			}
		})
	}
}
