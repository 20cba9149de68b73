//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	gnocchiclient "github.com/gophercloud/utils/v2/gnocchi"
	"github.com/stretchr/testify/require"
)

// The instances of driver/libvirt's node file: running, running, paused
// (the test driver keeps counting for a paused domain); the shut-off one is
// not metered. Each has 1 vCPU.
var libvirtInstances = []struct {
	name, uuid, display, flavor, image string
	disks, nics                        []string
}{
	{"instance-00000001", "6f1b2c3d-0a1b-4c5d-8e9f-000000000001", "web-1", "m1.small", "9d1f2c3a-0000-4000-8000-000000000001",
		[]string{"vda", "vdb", "vdc"}, []string{"tap0a1b2c3d-01", "tap0a1b2c3d-02"}},
	{"instance-00000002", "6f1b2c3d-0a1b-4c5d-8e9f-000000000002", "db-1", "m1.medium", "9d1f2c3a-0000-4000-8000-000000000002",
		[]string{"vda", "vdb"}, []string{"tap0a1b2c3d-03"}},
	{"instance-00000003", "6f1b2c3d-0a1b-4c5d-8e9f-000000000003", "paused-1", "m1.tiny", "9d1f2c3a-0000-4000-8000-000000000001",
		[]string{"vda"}, []string{"tap0a1b2c3d-04"}},
}

// startLibvirtd starts libvirtd serving the test driver through
// scripts/libvirt/libvirtd.sh and returns its socket.
func startLibvirtd(t testing.TB) (socket string) {
	t.Helper()
	needFile(t, "/usr/sbin/libvirtd", "libvirt-daemon libvirt-clients")
	dir, err := os.MkdirTemp("/var/tmp", "mk-libvirtd-")
	require.NoError(t, err)
	script := scriptPath(t, "libvirt/libvirtd.sh")
	out, err := exec.Command(script, "start", dir).CombinedOutput()
	require.NoError(t, err, "libvirtd.sh start: %s", out)
	t.Cleanup(func() {
		out, err := exec.Command(script, "stop", dir).CombinedOutput()
		require.NoError(t, err, "libvirtd.sh stop: %s", out)
		os.RemoveAll(dir)
	})
	return filepath.Join(dir, "run", "libvirt-sock")
}

// libvirtAgentConfig writes the agent's config: the libvirt driver every
// second over driver/libvirt's node file, and a spool (what the publisher
// has not acknowledged at the end is kept, not discarded).
func libvirtAgentConfig(t testing.TB, dir, connect, socket string) string {
	t.Helper()
	node, err := filepath.Abs("../../driver/libvirt/testdata/node.xml")
	require.NoError(t, err)
	cfg := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
publishers:
  connect: [%s]
id: compute-01
spool: %s
batch: {size: 1000, age: 100ms}
stats_every: 0s
drivers:
  - type: libvirt
    interval: 1s
    settings:
      uri: test://%s
      socket: %s
`, connect, filepath.Join(dir, "spool"), node, socket)), 0o600))
	return cfg
}

// TestLibvirtCPUUtilThroughTheAgentsRateStage runs the reference agent with
// the libvirt driver and the stage the package doc gives for cpu_util (rate
// of cpu with percent_of: vcpus) against libvirtd's test driver. The test
// driver reports a domain's CPU time as the wall clock in ns (1 s of CPU
// per second, paused or not), so with 1 vCPU each domain reads 100%.
func TestLibvirtCPUUtilThroughTheAgentsRateStage(t *testing.T) {
	socket := startLibvirtd(t)
	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, pubOut, pubErr := start(t, pubBin, "-listen", addr, "-sink", "console://?format=json")
	stages := filepath.Join(dir, "stages.yaml")
	require.NoError(t, os.WriteFile(stages, []byte(`
- type: rate
  meters: ["cpu"]
  as: cpu_util
  percent_of: vcpus    # the label vcpus: a share of the vCPUs, in %
`), 0o600))
	ag, _, agentErr := start(t, agentBin, "-config", libvirtAgentConfig(t, dir, addr, socket), "-stages", stages)

	type point struct {
		Name       string            `json:"name"`
		Unit       string            `json:"unit"`
		Value      float64           `json:"value"`
		ResourceID string            `json:"resource_id"`
		Labels     map[string]string `json:"labels"`
	}
	utils := func() map[string][]point {
		out := map[string][]point{}
		pubOut.mu.Lock()
		defer pubOut.mu.Unlock()
		for _, l := range pubOut.all {
			var p point
			if json.Unmarshal([]byte(l), &p) == nil && p.Name == "cpu_util" {
				out[p.ResourceID] = append(out[p.ResourceID], p)
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		u := utils()
		for _, in := range libvirtInstances {
			if len(u[in.uuid]) < 4 {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "agent:\n%s\npublisher:\n%s", agentErr, pubErr)
	u := utils()
	for _, in := range libvirtInstances {
		for _, p := range u[in.uuid] {
			require.Equal(t, "%", p.Unit)
			require.Equal(t, "1", p.Labels["vcpus"])
			require.InDelta(t, 100, p.Value, 5, "%s: cpu_util", in.name)
		}
		t.Logf("%s: cpu_util %.2f%% .. (%d points)", in.name, u[in.uuid][0].Value, len(u[in.uuid]))
	}
	require.Len(t, u, len(libvirtInstances), "the shut-off domain has none")
	require.NoError(t, ag.Process.Signal(syscall.SIGTERM))
	require.NoError(t, ag.Wait(), "%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "%s", pubErr)
}

// startGnocchi starts Keystone and Gnocchi through
// scripts/openstack/keystone-gnocchi.sh and returns the clouds.yaml.
func startGnocchi(t testing.TB) string {
	t.Helper()
	for _, b := range []struct{ path, pkg string }{
		{"/usr/bin/keystone-manage", "keystone"}, {"/usr/bin/gnocchi-upgrade", "gnocchi-api"},
		{"/usr/bin/gnocchi-metricd", "gnocchi-metricd"}, {"/usr/lib/postgresql/15/bin/initdb", "postgresql"},
	} {
		needFile(t, b.path, b.pkg)
	}
	dir, err := os.MkdirTemp("/var/tmp", "mk-gnocchi-")
	require.NoError(t, err)
	script := scriptPath(t, "openstack/keystone-gnocchi.sh")
	args := []string{"start", dir}
	for range 3 {
		args = append(args, strconv.Itoa(freePort(t)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	begin := time.Now()
	out, err := exec.CommandContext(ctx, script, args...).CombinedOutput()
	t.Cleanup(func() {
		out, err := exec.Command(script, "stop", dir).CombinedOutput()
		require.NoError(t, err, "keystone-gnocchi.sh stop: %s", out)
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	require.NoError(t, err, "keystone-gnocchi.sh start: %s", out)
	t.Logf("Keystone + Gnocchi up in %v", time.Since(begin).Round(time.Millisecond))
	return filepath.Join(dir, "clouds.yaml")
}

// gnocchiAs returns a Gnocchi client authenticated as cloud of cloudsFile.
func gnocchiAs(t testing.TB, cloudsFile, cloud string) *gophercloud.ServiceClient {
	t.Helper()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(cloud), clouds.WithLocations(cloudsFile))
	require.NoError(t, err)
	p, err := openstack.AuthenticatedClient(context.Background(), ao)
	require.NoError(t, err)
	sc, err := gnocchiclient.NewGnocchiV1(p, eo)
	require.NoError(t, err)
	return sc
}

// createCeilometerTypes creates the resource types for libvirt's meters and
// the notification driver's shipped definitions as ceilometer-upgrade of
// Zed does (ceilometer/gnocchi_client.py: the initial attributes, then
// those its update operations add: flavor_name required, launched_at,
// created_at, deleted_at and availability_zone for instances; volume_type,
// image_id and instance_id for volumes).
func createCeilometerTypes(t testing.TB, admin *gophercloud.ServiceClient) {
	t.Helper()
	str := func(required bool) map[string]any {
		return map[string]any{"type": "string", "min_length": 0, "max_length": 255, "required": required}
	}
	uuid := func(required bool) map[string]any { return map[string]any{"type": "uuid", "required": required} }
	date := map[string]any{"type": "datetime", "required": false}
	types := map[string]map[string]any{
		"instance": {"flavor_id": str(true), "image_ref": str(false), "host": str(true), "display_name": str(true),
			"server_group": str(false), "flavor_name": str(true), "launched_at": date, "created_at": date, "deleted_at": date,
			"availability_zone": str(false)},
		"instance_disk":              {"name": str(true), "instance_id": uuid(true)},
		"instance_network_interface": {"name": str(true), "instance_id": uuid(true)},
		"volume": {"display_name": str(false), "volume_type": str(false), "image_id": uuid(false),
			"instance_id": uuid(false)},
		"image": {"name": str(true), "container_format": str(true), "disk_format": str(true)},
	}
	for name, attrs := range types {
		resp, err := admin.Post(context.Background(), admin.ServiceURL("resource_type"),
			map[string]any{"name": name, "attributes": attrs}, nil, &gophercloud.RequestOpts{OkCodes: []int{201}})
		if resp != nil {
			resp.Body.Close()
		}
		require.NoError(t, err, "create resource type %s", name)
	}
}

// num reads a value gophercloud decoded (a json.Number).
func num(t testing.TB, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	require.NoError(t, err)
	return f
}

// TestLibvirtToGnocchiEndToEnd: libvirt driver -> reference agent ->
// reference publisher -> a real Gnocchi behind Keystone, with the resource
// types Ceilometer's upgrade step creates: the sink's built-in types make
// instance, instance_disk and instance_network_interface resources with
// their required attributes, and their metrics read back through
// Gnocchi's API. The same agent runs the notification driver against a
// real RabbitMQ, fed by oslo.messaging's Notifier: Nova's, Cinder's and
// Glance's notifications make instance, volume and image resources (the
// shipped definitions' label gnocchi.resource_type) with the attributes
// their payloads give. One Gnocchi stack for both: it takes minutes to
// start on a loaded machine.
func TestLibvirtToGnocchiEndToEnd(t *testing.T) {
	socket := startLibvirtd(t)
	rabbit := startRabbitNode(t)
	cloudsFile := startGnocchi(t)
	createCeilometerTypes(t, gnocchiAs(t, cloudsFile, "meterkit-admin"))
	gn := gnocchiAs(t, cloudsFile, "meterkit")

	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, _, pubErr := start(t, pubBin, "-listen", addr,
		"-sink", "gnocchi://?cloud=meterkit&archive_policy=meterkit-1s&clouds_file="+url.QueryEscape(cloudsFile))
	// The services create their exchanges; the agent binds its queue to
	// them before anything is published.
	ch := rabbit.channel(t)
	for _, x := range []string{"nova", "cinder", "glance"} {
		require.NoError(t, ch.ExchangeDeclare(x, "topic", false, false, false, false, nil))
	}
	const queue = "meterkit-e2e-gnocchi"
	cfg := libvirtAgentConfig(t, dir, addr, socket)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, `  - name: bus
    type: notification
    settings:
      url: %s
      queue: %s
      exchanges: [nova, cinder, glance]
      retry_interval: 200ms
`, rabbit.url(), queue)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	ag, _, agentErr := start(t, agentBin, "-config", cfg)
	require.Eventually(t, func() bool { _, c, ok := rabbit.queue(t, queue); return ok && c == 1 },
		30*time.Second, 50*time.Millisecond, "the agent consumes from its queue:\n%s", agentErr)
	const (
		notedInstance = "c7a1e5b2-3f4d-4e6a-8b9c-0d1e2f3a4b99"
		notedVolume   = "e2d4f6a8-1b3c-4d5e-8f7a-9b0c1d2e3f4a"
		notedImage    = "0e4b1c6a-2d3f-4a5b-9c8d-7e6f5a4b3c2d"
	)
	created := instanceExists(notedInstance)
	created.EventType = "compute.instance.create.end"
	rabbit.publishOslo(t, created,
		novaNote{Exchange: "cinder", PublisherID: "volume.block-01", EventType: "volume.create.end", Payload: map[string]any{
			"tenant_id": "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", "user_id": "1f2e3d4c5b6a4978a1b2c3d4e5f60718",
			"volume_id": notedVolume, "size": 40, "display_name": "data-1", "volume_type": "lvm", "status": "available",
			"availability_zone": "nova", "host": "block-01@lvm#lvm", "created_at": "2026-11-30 09:10:00+00:00"}},
		novaNote{Exchange: "glance", PublisherID: "image.controller", EventType: "image.upload", Payload: map[string]any{
			"id": notedImage, "name": "debian-12", "owner": "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", "size": 349372416,
			"disk_format": "qcow2", "container_format": "bare", "status": "active", "visibility": "public"}},
	)

	type resource struct {
		Type               string            `json:"type"`
		OriginalResourceID string            `json:"original_resource_id"`
		ProjectID          string            `json:"project_id"`
		UserID             string            `json:"user_id"`
		Host               string            `json:"host"`
		DisplayName        string            `json:"display_name"`
		FlavorName         string            `json:"flavor_name"`
		FlavorID           *string           `json:"flavor_id"`
		ImageRef           *string           `json:"image_ref"`
		VolumeType         *string           `json:"volume_type"`
		ContainerFormat    string            `json:"container_format"`
		DiskFormat         string            `json:"disk_format"`
		Name               string            `json:"name"`
		InstanceID         string            `json:"instance_id"`
		Metrics            map[string]string `json:"metrics"`
	}
	get := func(typ, id string) (resource, bool) {
		var r resource
		_, err := gn.Get(context.Background(), gn.ServiceURL("resource", typ, url.PathEscape(id)), &r,
			&gophercloud.RequestOpts{OkCodes: []int{200}})
		return r, err == nil
	}
	host, err := os.Hostname()
	require.NoError(t, err)
	var nicIDs []string
	for _, in := range libvirtInstances {
		for _, nic := range in.nics {
			nicIDs = append(nicIDs, in.name+"-"+in.uuid+"-"+nic)
		}
	}
	// Every resource, with every metric of its kind.
	require.Eventually(t, func() bool {
		for _, in := range libvirtInstances {
			if r, ok := get("instance", in.uuid); !ok || len(r.Metrics) < 5 {
				return false
			}
			for _, d := range in.disks {
				if r, ok := get("instance_disk", in.uuid+"-"+d); !ok || len(r.Metrics) < 4 {
					return false
				}
			}
		}
		for _, id := range nicIDs {
			if r, ok := get("instance_network_interface", id); !ok || len(r.Metrics) < 8 {
				return false
			}
		}
		if r, ok := get("instance", notedInstance); !ok || len(r.Metrics) < 4 {
			return false
		}
		if _, ok := get("volume", notedVolume); !ok {
			return false
		}
		_, ok := get("image", notedImage)
		return ok
	}, 60*time.Second, 250*time.Millisecond, "agent:\n%s\npublisher:\n%s", agentErr, pubErr)

	for _, in := range libvirtInstances {
		r, _ := get("instance", in.uuid)
		require.Equal(t, "instance", r.Type)
		require.Equal(t, in.display, r.DisplayName)
		require.Equal(t, in.flavor, r.FlavorName)
		require.NotNil(t, r.FlavorID, "required: created empty (Nova's metadata has no flavor id)")
		require.NotNil(t, r.ImageRef)
		require.Equal(t, in.image, *r.ImageRef, "from <nova:root type=image>")
		require.Equal(t, host, r.Host, "the agent's host")
		require.NotEmpty(t, r.ProjectID)
		require.NotEmpty(t, r.UserID)
		for _, m := range []string{"cpu", "vcpus", "memory", "memory.usage", "memory.resident"} {
			require.Contains(t, r.Metrics, m, in.name)
		}
		for _, d := range in.disks {
			r, _ := get("instance_disk", in.uuid+"-"+d)
			require.Equal(t, "instance_disk", r.Type)
			require.Equal(t, d, r.Name)
			require.Equal(t, in.uuid, r.InstanceID)
			require.Equal(t, in.uuid+"-"+d, r.OriginalResourceID)
			require.Contains(t, r.Metrics, "disk.device.read.bytes")
		}
	}
	for _, id := range nicIDs {
		r, _ := get("instance_network_interface", id)
		require.Equal(t, "instance_network_interface", r.Type)
		require.True(t, strings.HasSuffix(id, "-"+r.Name), "name is the vNIC's target: %s", r.Name)
		require.Contains(t, id, r.InstanceID)
		require.Contains(t, r.Metrics, "network.incoming.bytes")
	}

	// The resources of the notifications, with their payloads' attributes.
	inst, _ := get("instance", notedInstance)
	require.Equal(t, "web-99", inst.DisplayName)
	require.Equal(t, "m1.small", inst.FlavorName)
	require.NotNil(t, inst.FlavorID)
	require.Equal(t, "2", *inst.FlavorID)
	require.NotNil(t, inst.ImageRef)
	require.Equal(t, notedImage, *inst.ImageRef)
	require.Equal(t, "compute-01", inst.Host, "the payload's host, not the agent's")
	require.Equal(t, "8a4c3d2e1f0b4a9c8d7e6f5a4b3c2d1e", inst.ProjectID)
	for _, m := range []string{"instance", "memory", "vcpus", "disk.root.size"} {
		require.Contains(t, inst.Metrics, m)
	}
	vol, _ := get("volume", notedVolume)
	require.Equal(t, "data-1", vol.DisplayName)
	require.NotNil(t, vol.VolumeType)
	require.Equal(t, "lvm", *vol.VolumeType)
	require.Contains(t, vol.Metrics, "volume.size")
	img, _ := get("image", notedImage)
	require.Equal(t, "debian-12", img.Name)
	require.Equal(t, "bare", img.ContainerFormat)
	require.Equal(t, "qcow2", img.DiskFormat)
	require.Contains(t, img.Metrics, "image.size")

	// The measures read back: vcpus is 1 for each instance, and the test
	// driver's cpu grows with the wall clock.
	measures := func(typ, id, metric string) [][3]any {
		var out [][3]any
		u := gn.ServiceURL("resource", typ, url.PathEscape(id), "metric", url.PathEscape(metric), "measures") +
			"?refresh=true&granularity=1&aggregation=mean"
		_, err := gn.Get(context.Background(), u, &out, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK},
			MoreHeaders: map[string]string{"Accept": "application/json"}})
		require.NoError(t, err)
		return out
	}
	for _, in := range libvirtInstances {
		v := measures("instance", in.uuid, "vcpus")
		require.NotEmpty(t, v)
		for _, p := range v {
			require.Equal(t, 1.0, num(t, p[2]))
		}
		// Each point's value against its own timestamp, not against now: on
		// a loaded machine Gnocchi may lag a minute behind.
		cpu := measures("instance", in.uuid, "cpu")
		require.NotEmpty(t, cpu)
		p := cpu[len(cpu)-1]
		at, err := time.Parse(time.RFC3339, fmt.Sprint(p[0]))
		require.NoError(t, err, "timestamp %v", p[0])
		require.InDelta(t, float64(at.UnixNano()), num(t, p[2]), float64(2*time.Second),
			"the test driver's CPU time is the wall clock: the mean of a 1 s bucket lies within it")
		require.NotEmpty(t, measures("instance_disk", in.uuid+"-"+in.disks[0], "disk.device.read.bytes"))
	}
	require.NotEmpty(t, measures("instance_network_interface", nicIDs[0], "network.outgoing.bytes"))
	require.Eventually(t, func() bool {
		v := measures("volume", notedVolume, "volume.size")
		return len(v) == 1 && num(t, v[0][2]) == 40
	}, 30*time.Second, 250*time.Millisecond, "volume.size 40 GB")
	t.Logf("%d instance, %d instance_disk, %d instance_network_interface resources with their metrics in Gnocchi",
		len(libvirtInstances), 6, len(nicIDs))

	require.NoError(t, ag.Process.Signal(syscall.SIGTERM))
	require.NoError(t, ag.Wait(), "%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "%s", pubErr)
}
