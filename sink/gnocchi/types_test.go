package gnocchi

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// ceilometerTypes are the resource types that ceilometer-upgrade creates
// (ceilometer/gnocchi_client.py of Zed: resources_initial, then the update
// operations that add attributes) that the sink's built-in types name,
// with all their attributes, plus generic.
var ceilometerTypes = map[string]map[string]string{
	"generic": {},
	"instance": {"flavor_id": "required", "image_ref": "optional", "host": "required", "display_name": "required",
		"server_group": "optional", "flavor_name": "required", "launched_at": "optional", "created_at": "optional",
		"deleted_at": "optional", "availability_zone": "optional"},
	"instance_disk":              {"name": "required", "instance_id": "required uuid"},
	"instance_network_interface": {"name": "required", "instance_id": "required uuid"},
	"volume": {"display_name": "optional", "volume_type": "optional", "image_id": "optional uuid",
		"instance_id": "optional uuid"},
	"image": {"name": "required", "container_format": "required", "disk_format": "required"},
}

const (
	uuid    = "2d2a5a4e-1c2b-4f0e-9a34-0c8f7d1e6b01"
	project = "8f3e2a1b4c5d4e6f8a9b0c1d2e3f4a5b"
	user    = "1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d"
	image   = "9d1f2c3a-0000-4000-8000-000000000001"
)

// libvirtBatch is what driver/libvirt writes for one instance with one disk
// and one vNIC (its labels, resource ids and owners).
func libvirtBatch(at time.Time) []meter.Measurement {
	inst := []meter.Label{{Key: "instance_name", Value: "instance-0000002a"}, {Key: "display_name", Value: "web-1"},
		{Key: "flavor", Value: "m1.small"}, {Key: "image_ref", Value: image}}
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
	g.types = ceilometerTypes
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
		"host": "compute-1", "display_name": "web-1", "flavor_name": "m1.small", "flavor_id": "", "image_ref": image}, g.resources[uuid],
		"libvirt has no flavor id: created empty; image_ref from Nova's <nova:root>; no server_group label: left out")
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

// notificationBatch is what driver/notification's shipped meter
// definitions make of Nova's compute.instance.exists, Cinder's
// volume.exists and Glance's image.upload: the label gnocchi.resource_type
// names the type, the other labels come from the payload.
func notificationBatch(at time.Time) []meter.Measurement {
	inst := []meter.Label{{Key: "availability_zone", Value: "nova"}, {Key: "display_name", Value: "web-1"},
		{Key: "flavor_id", Value: "2"}, {Key: "flavor_name", Value: "m1.small"}, {Key: ResourceTypeLabel, Value: "instance"},
		{Key: "image_ref", Value: image}, {Key: "state", Value: "active"},
		{Key: "event_type", Value: "compute.instance.exists"}, {Key: "message_id", Value: "m-1"}}
	vol := []meter.Label{{Key: "display_name", Value: "data"}, {Key: ResourceTypeLabel, Value: "volume"},
		{Key: "status", Value: "available"}, {Key: "volume_type", Value: "lvm"},
		{Key: "event_type", Value: "volume.exists"}, {Key: "message_id", Value: "m-2"}}
	img := []meter.Label{{Key: "container_format", Value: "bare"}, {Key: "disk_format", Value: "qcow2"},
		{Key: ResourceTypeLabel, Value: "image"}, {Key: "name", Value: "debian-12"}, {Key: "status", Value: "active"},
		{Key: "event_type", Value: "image.upload"}, {Key: "message_id", Value: "m-3"}}
	m := func(name, unit, rid, host string, v float64, ls []meter.Label) meter.Measurement {
		return meter.Measurement{Name: name, Kind: meter.Gauge, Unit: unit, Value: v, Time: at, Host: host,
			ResourceID: rid, ProjectID: project, UserID: user, Labels: ls}
	}
	return []meter.Measurement{
		m("instance", "instance", uuid, "compute-01", 1, inst),
		m("memory", "MB", uuid, "compute-01", 2048, inst),
		m("vcpus", "vcpu", uuid, "compute-01", 1, inst),
		m("disk.root.size", "GB", uuid, "compute-01", 20, inst),
		m("volume.size", "GB", "5e6f7a8b-0000-4000-8000-000000000001", "cinder-01", 10, vol),
		m("image.size", "B", image, "agent-1", 1<<30, img),
	}
}

// TestResourceTypeLabel: measurements labelled gnocchi.resource_type (as
// the notification driver's shipped definitions label them) make resources
// of that type, with the attributes the built-in type of that name takes
// from their labels, and nothing else: Gnocchi refuses attributes a type
// does not have, and the fake does too.
func TestResourceTypeLabel(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	g.types = maps.Clone(ceilometerTypes) // the test adds one
	s, err := New(WithEndpoint(g.URL), WithBasicAuth(""))
	require.NoError(t, err)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	require.NoError(t, s.Write(context.Background(), notificationBatch(at)))

	require.Equal(t, map[string]any{"id": uuid, "type": "instance", "project_id": project, "user_id": user,
		"host": "compute-01", "display_name": "web-1", "flavor_id": "2", "flavor_name": "m1.small", "image_ref": image},
		g.resources[uuid], "flavor_name from the label flavor_name when there is no flavor")
	require.Equal(t, map[string]any{"id": "5e6f7a8b-0000-4000-8000-000000000001", "type": "volume", "project_id": project,
		"user_id": user, "display_name": "data", "volume_type": "lvm"}, g.resources["5e6f7a8b-0000-4000-8000-000000000001"])
	require.Equal(t, map[string]any{"id": image, "type": "image", "project_id": project, "user_id": user,
		"name": "debian-12", "container_format": "bare", "disk_format": "qcow2"}, g.resources[image])
	require.Len(t, g.measures[uuid], 4, "instance, memory, vcpus, disk.root.size on the instance")
	require.Equal(t, []measure{{Timestamp: "2026-11-30T12:00:00Z", Value: 10}},
		g.measures["5e6f7a8b-0000-4000-8000-000000000001"]["volume.size"])

	// A Glance image without its formats (an upload still queued): the
	// required attributes are created empty rather than refused.
	img := notificationBatch(at)[5]
	img.ResourceID = "9d1f2c3a-0000-4000-8000-0000000000ff"
	img.Labels = []meter.Label{{Key: ResourceTypeLabel, Value: "image"}, {Key: "name", Value: "queued"}}
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{img}))
	require.Equal(t, map[string]any{"id": img.ResourceID, "type": "image", "project_id": project, "user_id": user,
		"name": "queued", "container_format": "", "disk_format": ""}, g.resources[img.ResourceID])

	// The label wins over the meter name: a libvirt-named meter labelled
	// generic is generic.
	cpu := libvirtBatch(at)[0]
	cpu.ResourceID = "7a000000-0000-4000-8000-000000000001"
	cpu.Labels = append(cpu.Labels[:len(cpu.Labels):len(cpu.Labels)], meter.Label{Key: ResourceTypeLabel, Value: "generic"})
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{cpu}))
	require.Equal(t, map[string]any{"id": cpu.ResourceID, "type": "generic", "project_id": project, "user_id": user},
		g.resources[cpu.ResourceID])

	// A type Gnocchi does not have (404: not created yet, ceilometer-upgrade
	// not run) is retried: the operator can still create it.
	odd := notificationBatch(at)[4]
	odd.ResourceID = "5e6f7a8b-0000-4000-8000-000000000002"
	odd.Labels = []meter.Label{{Key: ResourceTypeLabel, Value: "volume_backup"}}
	err = s.Write(context.Background(), []meter.Measurement{odd})
	require.ErrorContains(t, err, "create volume_backup resource")
	require.False(t, sink.IsPermanent(err), "a missing resource type is retried: %v", err)
	g.types["volume_backup"] = map[string]string{}
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{odd}))
	require.Equal(t, "volume_backup", g.resources[odd.ResourceID]["type"])
}

// TestResourceTypeMapAndMissingAttribute: a list of one's own replaces the
// built-in types; the first type whose meters match decides; a required
// attribute with neither label nor default is refused by Gnocchi, for
// good, for those measurements only.
func TestResourceTypeMapAndMissingAttribute(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	g.types = map[string]map[string]string{"generic": {}, "instance_disk": ceilometerTypes["instance_disk"],
		"switch_port": {"switch": "required", "controller": "required", "neutron_port_id": "optional"}}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, err := New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceTypes(
		ResourceType{Name: "switch_port", Meters: []string{"switch.port.*"},
			Attributes: map[string]string{"switch": "switch", "controller": "controller", "neutron_port_id": "port|neutron_port"},
			Defaults:   map[string]string{"controller": "none"}},
		ResourceType{Name: "instance_disk", Meters: []string{"disk.*"},
			Attributes: map[string]string{"name": "dev", "instance_id": "vm"}},
	))
	require.NoError(t, err)
	m := func(name, rid string, ls ...meter.Label) meter.Measurement {
		return meter.Measurement{Name: name, Kind: meter.Gauge, Value: 1, Time: at, ResourceID: rid, Labels: ls}
	}
	err = s.Write(context.Background(), []meter.Measurement{
		m("switch.port.receive.bytes", "sw1-ge0", meter.Label{Key: "switch", Value: "sw1"}, meter.Label{Key: "neutron_port", Value: "p-1"}),
		m("disk.read.bytes", "d-1", meter.Label{Key: "dev", Value: "sdb"}), // no vm label: instance_id missing
		m("disk.read.bytes", "d-2", meter.Label{Key: "dev", Value: "sdc"}, meter.Label{Key: "vm", Value: uuid}),
		// libvirt's meters: no built-in types any more, so generic.
		libvirtBatch(at)[1],
	})
	var pe *sink.PartialError
	require.ErrorAs(t, err, &pe, "%v", err)
	require.Equal(t, []int{1}, pe.Rejected)
	require.ErrorContains(t, err, "create instance_disk resource \"d-1\"")
	require.ErrorContains(t, err, "instance_id")
	require.Equal(t, map[string]any{"id": "sw1-ge0", "type": "switch_port", "switch": "sw1", "controller": "none",
		"neutron_port_id": "p-1"}, g.resources["sw1-ge0"], "the second label of port|neutron_port, the default for controller")
	require.Equal(t, map[string]any{"id": "d-2", "type": "instance_disk", "name": "sdc", "instance_id": uuid}, g.resources["d-2"])
	require.Equal(t, "generic", g.resources[uuid]["type"])

	// Alone, the measurement missing its attribute is refused for good.
	err = s.Write(context.Background(), []meter.Measurement{m("disk.read.bytes", "d-3", meter.Label{Key: "dev", Value: "sdd"})})
	require.True(t, sink.IsPermanent(err), "a required attribute missing: Gnocchi refuses, for good: %v", err)

	for _, bad := range []ResourceType{{}, {Name: "x", Meters: []string{"["}}, {Name: "x", Attributes: map[string]string{"id": "a"}},
		{Name: "x", Attributes: map[string]string{"state": meter.StateLabel}},
		{Name: "x", Attributes: map[string]string{"state": "level|" + meter.StateLabel}},
		{Name: "x", Attributes: map[string]string{"a": "b||c"}}} {
		_, err := New(WithEndpoint(g.URL), WithBasicAuth(""), WithResourceTypes(bad))
		require.Error(t, err, "%+v", bad)
	}
}

// TestResourceTypesNone: resource_types=none in the URL turns the built-in
// types off: libvirt's instance is of resource_type (generic by default)
// with the labels of resource_attrs, and a measurement labelled with a
// type still gets that type, with resource_attrs's attributes.
func TestResourceTypesNone(t *testing.T) {
	g := newFakeGnocchi(t, func(*http.Request) bool { return true })
	g.types = map[string]map[string]string{"generic": {}, "volume": ceilometerTypes["volume"],
		"host": {"host_name": "required", "display_name": "optional"}}
	addr := strings.TrimPrefix(g.URL, "http://")
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	s, err := sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic&resource_types=none")
	require.NoError(t, err)
	require.NoError(t, s.Write(context.Background(), libvirtBatch(at)))
	for _, id := range []string{uuid, uuid + "-vda", "instance-0000002a-" + uuid + "-tap1"} {
		require.Equal(t, map[string]any{"id": id, "type": "generic", "project_id": project, "user_id": user}, g.resources[id])
	}
	vol := notificationBatch(at)[4]
	vol.Labels = []meter.Label{{Key: ResourceTypeLabel, Value: "volume"}, {Key: "display_name", Value: "data"}, {Key: "volume_type", Value: "lvm"}}
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{vol}))
	require.Equal(t, map[string]any{"id": vol.ResourceID, "type": "volume", "project_id": project, "user_id": user},
		g.resources[vol.ResourceID], "no built-in volume type and no resource_attrs: no attributes")

	// resource_type and resource_attrs decide instead.
	s, err = sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic&resource_types=none&resource_type=host&resource_attrs=host_name,display_name")
	require.NoError(t, err)
	cpu := meter.Measurement{Name: "cpu", Kind: meter.Cumulative, Unit: "ns", Value: 1, Time: at, Host: "compute-9",
		Labels: []meter.Label{{Key: "instance_name", Value: "i-9"}, {Key: "host_name", Value: "compute-9"}, {Key: "display_name", Value: "c9"}}}
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{cpu}))
	require.Equal(t, map[string]any{"id": "compute-9", "type": "host", "host_name": "compute-9", "display_name": "c9"}, g.resources["compute-9"])

	// resource_types=default is the built-in list.
	s, err = sink.Open(context.Background(), "gnocchi+http://"+addr+"?auth=basic&resource_types=default")
	require.NoError(t, err)
	vol.ResourceID = "5e6f7a8b-0000-4000-8000-000000000009"
	require.NoError(t, s.Write(context.Background(), []meter.Measurement{vol}))
	require.Equal(t, map[string]any{"id": vol.ResourceID, "type": "volume", "project_id": project, "user_id": user,
		"display_name": "data", "volume_type": "lvm"}, g.resources[vol.ResourceID])
}
