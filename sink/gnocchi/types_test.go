package gnocchi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// ceilometerTypes are the required attributes of the resource types that
// ceilometer-upgrade creates (ceilometer/gnocchi_client.py), plus generic.
var ceilometerTypes = map[string][]string{
	"generic":                    nil,
	"instance":                   {"flavor_id", "host", "display_name", "flavor_name"},
	"instance_disk":              {"name", "instance_id"},
	"instance_network_interface": {"name", "instance_id"},
	"volume":                     nil,
}

const (
	uuid    = "2d2a5a4e-1c2b-4f0e-9a34-0c8f7d1e6b01"
	project = "8f3e2a1b4c5d4e6f8a9b0c1d2e3f4a5b"
	user    = "1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d"
)

// libvirtBatch is what driver/libvirt writes for one instance with one disk
// and one vNIC (its labels, resource ids and owners).
func libvirtBatch(at time.Time) []meter.Measurement {
	inst := []meter.Label{{Key: "instance_name", Value: "instance-0000002a"}, {Key: "display_name", Value: "web-1"},
		{Key: "flavor", Value: "m1.small"}}
	withID := append(inst[:len(inst):len(inst)], meter.Label{Key: "instance_id", Value: uuid})
	disk := append(withID[:len(withID):len(withID)], meter.Label{Key: "disk_name", Value: "vda"})
	nic := append(withID[:len(withID):len(withID)], meter.Label{Key: "vnic_name", Value: "tap1"}, meter.Label{Key: "mac", Value: "fa:16:3e:00:00:01"})
	cpu := append(inst[:len(inst):len(inst)], meter.Label{Key: "vcpus", Value: "1"})
	m := func(name string, kind meter.Kind, unit, rid string, v float64, ls []meter.Label) meter.Measurement {
		return meter.Measurement{Name: name, Kind: kind, Unit: unit, Value: v, Time: at, Host: "compute-1",
			ResourceID: rid, ProjectID: project, UserID: user, Labels: ls}
	}
	return []meter.Measurement{
		m("cpu", meter.Cumulative, "ns", uuid, 1e9, cpu),
		m("vcpus", meter.Gauge, "vcpu", uuid, 1, inst),
		m("memory", meter.Gauge, "MB", uuid, 512, inst),
		m("disk.device.read.bytes", meter.Cumulative, "B", uuid+"-vda", 4096, disk),
		m("network.incoming.bytes", meter.Cumulative, "B", "instance-0000002a-"+uuid+"-tap1", 100, nic),
	}
}

func TestLibvirtMeasurementsCreateCeilometersResourceTypes(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	g.required = ceilometerTypes
	addr := strings.TrimPrefix(g.URL, "http://")
	s, err := sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic")
	require.NoError(t, err)
	defer s.Close(context.Background())
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	batch := libvirtBatch(at)
	// Another driver's measurement named like libvirt's, without its
	// labels, stays generic.
	batch = append(batch, meter.Measurement{Name: "memory", Kind: meter.Gauge, Value: 3, Time: at, Host: "compute-1"})
	require.NoError(t, s.Write(context.Background(), batch))

	require.Equal(t, map[string]any{"id": uuid, "type": "instance", "project_id": project, "user_id": user,
		"host": "compute-1", "display_name": "web-1", "flavor_name": "m1.small", "flavor_id": ""}, g.resources[uuid],
		"libvirt has no flavor id: created empty; no image_ref or server_group label: left out")
	require.Equal(t, map[string]any{"id": uuid + "-vda", "type": "instance_disk", "project_id": project, "user_id": user,
		"name": "vda", "instance_id": uuid}, g.resources[uuid+"-vda"])
	nic := "instance-0000002a-" + uuid + "-tap1"
	require.Equal(t, map[string]any{"id": nic, "type": "instance_network_interface", "project_id": project, "user_id": user,
		"name": "tap1", "instance_id": uuid}, g.resources[nic])
	require.Equal(t, map[string]any{"id": "compute-1", "type": "generic"}, g.resources["compute-1"])
	require.Len(t, g.measures[uuid], 3)
	require.Equal(t, []measure{{Timestamp: "2026-11-30T12:00:00Z", Value: 4096}}, g.measures[uuid+"-vda"]["disk.device.read.bytes"])
	require.Equal(t, []measure{{Timestamp: "2026-11-30T12:00:00Z", Value: 100}}, g.measures[nic]["network.incoming.bytes"])
}

func TestResourceTypeLabelAndOwnTypes(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	g.required = ceilometerTypes
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	// Without the built-in types, libvirt's instance is generic, with the
	// labels WithResourceAttributes names.
	s, err := New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceTypes(), WithResourceAttributes("flavor"))
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), libvirtBatch(at)[:1]))
	require.Equal(t, map[string]any{"id": uuid, "type": "generic", "project_id": project, "user_id": user, "flavor": "m1.small"}, g.resources[uuid])

	// The label names the type per measurement, over the meter name; with
	// no ResourceType of that name, WithResourceAttributes gives the
	// attributes.
	s, err = New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceAttributes("display_name"))
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{
		{Name: "volume.size", Kind: meter.Gauge, Unit: "GB", Value: 10, Time: at, ResourceID: "vol-1",
			Labels: []meter.Label{{Key: ResourceTypeLabel, Value: "volume"}, {Key: "display_name", Value: "data"}}},
		// Labelled instance: the instance type's attributes, though the
		// name matches none of its meters.
		{Name: "instance", Kind: meter.Gauge, Value: 1, Time: at, Host: "compute-2", ResourceID: "inst-2",
			Labels: []meter.Label{{Key: ResourceTypeLabel, Value: "instance"}, {Key: "display_name", Value: "db"}}},
	}))
	require.Equal(t, map[string]any{"id": "vol-1", "type": "volume", "display_name": "data"}, g.resources["vol-1"])
	require.Equal(t, map[string]any{"id": "inst-2", "type": "instance", "host": "compute-2", "display_name": "db",
		"flavor_name": "", "flavor_id": ""}, g.resources["inst-2"])

	// A type of one's own, by pattern.
	s, err = New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceTypes(ResourceType{Name: "instance_disk",
		Meters: []string{"disk.*"}, Attributes: map[string]string{"name": "dev", "instance_id": "vm"}}))
	require.NoError(t, err)
	err = s.Write(context.Background(), []meter.Measurement{{Name: "disk.x", Kind: meter.Gauge, Value: 1, Time: at,
		ResourceID: "d-1", Labels: []meter.Label{{Key: "dev", Value: "sdb"}}}})
	require.True(t, sink.IsPermanent(err), "a required attribute missing: Gnocchi refuses, for good")
	require.ErrorContains(t, err, "create instance_disk resource \"d-1\"")
	require.ErrorContains(t, err, "instance_id")

	for _, bad := range []ResourceType{{}, {Name: "x", Meters: []string{"["}}, {Name: "x", Attributes: map[string]string{"id": "a"}},
		{Name: "x", Attributes: map[string]string{"state": meter.StateLabel}}} {
		_, err := New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceTypes(bad))
		require.Error(t, err, "%+v", bad)
	}
}
