package riemanntest

import (
	"testing"

	riemannpb "github.com/riemann/riemann-go-client/proto"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// Take hands over what arrived since the last Take and forgets it; the
// index still answers queries with the latest event of each series.
func TestTakeKeepsTheIndex(t *testing.T) {
	s := NewServer(t)
	c := dial(t, s.Addr())
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("eu1", "a", 1), ev("eu1", "a", 2)}}).GetOk())
	got := s.Take()
	require.Len(t, got, 2)
	require.Equal(t, 2.0, got[1].Metric)
	require.Zero(t, s.Count())
	require.Empty(t, s.Take())
	require.True(t, roundTrip(t, c, &riemannpb.Msg{Events: []*riemannpb.Event{ev("us1", "b", 3)}}).GetOk())
	require.Equal(t, 1, s.Count())
	r := roundTrip(t, c, &riemannpb.Msg{Query: &riemannpb.Query{String_: proto.String("true")}})
	require.True(t, r.GetOk())
	require.Len(t, r.Events, 2)
	require.Equal(t, 2.0, r.Events[0].GetMetricD(), "the index kept eu1/a after Take")
	require.Equal(t, 3.0, r.Events[1].GetMetricD())
}
