package libvirt

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg, network, address, uri, err string
	}{
		{cfg: `{}`, network: "unix", address: DefaultSocket, uri: "qemu:///system"},
		{cfg: `{"uri": "test+unix:///default?socket=/tmp/s"}`, network: "unix", address: "/tmp/s", uri: "test:///default"},
		{cfg: `{"uri": "test+unix:///default?socket=/tmp/s", "socket": "/tmp/t"}`, network: "unix", address: "/tmp/t", uri: "test:///default"},
		{cfg: `{"uri": "qemu+tcp://node1/system"}`, network: "tcp", address: "node1:16509", uri: "qemu:///system"},
		{cfg: `{"uri": "qemu+tcp://node1:1234/system"}`, network: "tcp", address: "node1:1234", uri: "qemu:///system"},
		{cfg: `{"uri": "qemu+ssh://node1/system"}`, err: `libvirt: config: uri "qemu+ssh://node1/system": transport "ssh" is not supported (want unix or tcp)`},
		{cfg: `{"uri": "qemu+tcp://node1/system", "socket": "/s"}`, err: `socket "/s" is for the unix transport`},
		{cfg: `{"uri": "/system"}`, err: "has no scheme"},
		{cfg: `{"stats": "fast"}`, err: `stats "fast": want auto, bulk or domain`},
		{cfg: `{"dial_timeout": "-1s"}`, err: "dial_timeout -1s must be positive"},
		{cfg: `{"metadata_refresh": "0s"}`, err: "metadata_refresh 0s must be positive"},
		{cfg: `{"sokcet": "/s"}`, err: `libvirt: config: json: unknown field "sokcet"`},
	} {
		t.Run(tc.cfg, func(t *testing.T) {
			d, err := New(driver.ConfigFromJSON([]byte(tc.cfg)))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			dr := d.(*Driver)
			require.Equal(t, tc.network, dr.network)
			require.Equal(t, tc.address, dr.address)
			require.Equal(t, tc.uri, string(dr.uri))
		})
	}
}

func TestRegistered(t *testing.T) {
	require.Contains(t, driver.Drivers(), "libvirt")
}

// TestParseDomain reads a domain XML recorded from libvirtd (virsh dumpxml).
func TestParseDomain(t *testing.T) {
	b, err := os.ReadFile("testdata/instance-00000001.xml")
	require.NoError(t, err)
	m, err := parseDomain(string(b))
	require.NoError(t, err)
	const id = "6f1b2c3d-0a1b-4c5d-8e9f-000000000001"
	require.Equal(t, id, m.uuid)
	require.Equal(t, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", m.project)
	require.Equal(t, "a1b2c3d4e5f60718293a4b5c6d7e8f90", m.user)
	inst := []meter.Label{{Key: "instance_name", Value: "instance-00000001"}, {Key: "display_name", Value: "web-1"},
		{Key: "flavor", Value: "m1.small"}, {Key: "image_ref", Value: "9d1f2c3a-0000-4000-8000-000000000001"}}
	require.Equal(t, inst, m.instLabels)
	require.Equal(t, append(inst[:4:4], meter.Label{Key: "vcpus", Value: "2"}), m.cpuLabelsFor(2))
	require.Equal(t, inst, m.instLabels, "cpu labels must not write into the instance labels")

	require.Len(t, m.disks, 3)
	require.Equal(t, "vdb", m.disks[1].name)
	require.Equal(t, id+"-vdb", m.disks[1].resource)
	require.Equal(t, append(inst[:4:4], meter.Label{Key: "instance_id", Value: id}, meter.Label{Key: "disk_name", Value: "vdb"}), m.disks[1].labels)
	require.Len(t, m.nics, 2)
	require.Equal(t, "instance-00000001-"+id+"-tap0a1b2c3d-02", m.nics[1].resource)
	require.Equal(t, append(inst[:4:4], meter.Label{Key: "instance_id", Value: id},
		meter.Label{Key: "vnic_name", Value: "tap0a1b2c3d-02"}, meter.Label{Key: "mac", Value: "fa:16:3e:00:00:02"}), m.nics[1].labels)
}

// TestParseDomainPlain: a domain not made by Nova, an empty CD-ROM drive,
// an unplugged vNIC and metadata of another program named "instance".
func TestParseDomainPlain(t *testing.T) {
	m, err := parseDomain(`<domain type='kvm'><name>web</name><uuid>00000000-0000-4000-8000-000000000001</uuid>
<metadata><x:instance xmlns:x="http://example.com/other"><x:owner><x:user uuid="nope"/></x:owner></x:instance></metadata>
<devices>
<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
<disk type='block' device='disk'><source dev='/dev/vg/web'/><target dev='sda'/></disk>
<interface type='bridge'><mac address='52:54:00:00:00:01'/></interface>
<interface type='bridge'><target dev='vnet3'/></interface>
</devices></domain>`)
	require.NoError(t, err)
	require.Empty(t, m.project)
	require.Empty(t, m.user)
	require.Equal(t, []meter.Label{{Key: "instance_name", Value: "web"}}, m.instLabels)
	require.Len(t, m.disks, 1)
	require.Equal(t, "sda", m.disks[0].name)
	require.Len(t, m.nics, 1)
	require.Equal(t, "web-00000000-0000-4000-8000-000000000001-vnet3", m.nics[0].resource)
	require.Equal(t, "vnet3", m.nics[0].labels[len(m.nics[0].labels)-1].Value, "no mac label without a MAC")

	// Nova's metadata of an instance booted from a volume: <nova:root>
	// has no image (Nova leaves the element out), so no image_ref.
	m, err = parseDomain(`<domain type='kvm'><name>instance-00000009</name><uuid>00000000-0000-4000-8000-000000000009</uuid>
<metadata><nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"><nova:name>vol-booted</nova:name>
<nova:flavor name="m1.small"/><nova:owner><nova:user uuid="u1">u</nova:user><nova:project uuid="p1">p</nova:project></nova:owner>
<nova:root type="volume" uuid="11111111-0000-4000-8000-000000000001"/></nova:instance></metadata></domain>`)
	require.NoError(t, err)
	require.Equal(t, []meter.Label{{Key: "instance_name", Value: "instance-00000009"}, {Key: "display_name", Value: "vol-booted"},
		{Key: "flavor", Value: "m1.small"}}, m.instLabels)
	require.Equal(t, "p1", m.project)

	_, err = parseDomain(`<domain><name>x</name></domain>`)
	require.Error(t, err)
	_, err = parseDomain(`<domain`)
	require.Error(t, err)
}
