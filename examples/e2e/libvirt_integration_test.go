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
	name, uuid, display, flavor string
	disks, nics                 []string
}{
	{"instance-00000001", "6f1b2c3d-0a1b-4c5d-8e9f-000000000001", "web-1", "m1.small",
		[]string{"vda", "vdb", "vdc"}, []string{"tap0a1b2c3d-01", "tap0a1b2c3d-02"}},
	{"instance-00000002", "6f1b2c3d-0a1b-4c5d-8e9f-000000000002", "db-1", "m1.medium",
		[]string{"vda", "vdb"}, []string{"tap0a1b2c3d-03"}},
	{"instance-00000003", "6f1b2c3d-0a1b-4c5d-8e9f-000000000003", "paused-1", "m1.tiny",
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

// createCeilometerTypes creates the resource types for libvirt's meters as
// ceilometer-upgrade does (ceilometer/gnocchi_client.py: the initial
// attributes, then flavor_name added as required).
func createCeilometerTypes(t testing.TB, admin *gophercloud.ServiceClient) {
	t.Helper()
	str := func(required bool) map[string]any {
		return map[string]any{"type": "string", "min_length": 0, "max_length": 255, "required": required}
	}
	types := map[string]map[string]any{
		"instance": {"flavor_id": str(true), "image_ref": str(false), "host": str(true), "display_name": str(true),
			"server_group": str(false), "flavor_name": str(true)},
		"instance_disk":              {"name": str(true), "instance_id": map[string]any{"type": "uuid", "required": true}},
		"instance_network_interface": {"name": str(true), "instance_id": map[string]any{"type": "uuid", "required": true}},
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
// Gnocchi's API.
func TestLibvirtToGnocchiEndToEnd(t *testing.T) {
	socket := startLibvirtd(t)
	cloudsFile := startGnocchi(t)
	createCeilometerTypes(t, gnocchiAs(t, cloudsFile, "meterkit-admin"))
	gn := gnocchiAs(t, cloudsFile, "meterkit")

	dir := t.TempDir()
	pubBin, agentBin := build(t, dir, "publisher"), build(t, dir, "agent")
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pub, _, pubErr := start(t, pubBin, "-listen", addr,
		"-sink", "gnocchi://?cloud=meterkit&archive_policy=meterkit-1s&clouds_file="+url.QueryEscape(cloudsFile))
	ag, _, agentErr := start(t, agentBin, "-config", libvirtAgentConfig(t, dir, addr, socket))

	type resource struct {
		Type               string            `json:"type"`
		OriginalResourceID string            `json:"original_resource_id"`
		ProjectID          string            `json:"project_id"`
		UserID             string            `json:"user_id"`
		Host               string            `json:"host"`
		DisplayName        string            `json:"display_name"`
		FlavorName         string            `json:"flavor_name"`
		FlavorID           *string           `json:"flavor_id"`
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
		return true
	}, 60*time.Second, 250*time.Millisecond, "agent:\n%s\npublisher:\n%s", agentErr, pubErr)

	for _, in := range libvirtInstances {
		r, _ := get("instance", in.uuid)
		require.Equal(t, "instance", r.Type)
		require.Equal(t, in.display, r.DisplayName)
		require.Equal(t, in.flavor, r.FlavorName)
		require.NotNil(t, r.FlavorID, "required: created empty (Nova's metadata has no flavor id)")
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
		cpu := measures("instance", in.uuid, "cpu")
		require.NotEmpty(t, cpu)
		last := num(t, cpu[len(cpu)-1][2])
		require.InDelta(t, float64(time.Now().UnixNano()), last, float64(time.Minute), "the test driver's CPU time is the wall clock")
		require.NotEmpty(t, measures("instance_disk", in.uuid+"-"+in.disks[0], "disk.device.read.bytes"))
	}
	require.NotEmpty(t, measures("instance_network_interface", nicIDs[0], "network.outgoing.bytes"))
	t.Logf("%d instance, %d instance_disk, %d instance_network_interface resources with their metrics in Gnocchi",
		len(libvirtInstances), 6, len(nicIDs))

	require.NoError(t, ag.Process.Signal(syscall.SIGTERM))
	require.NoError(t, ag.Wait(), "%s", agentErr)
	require.NoError(t, pub.Process.Signal(syscall.SIGTERM))
	require.NoError(t, pub.Wait(), "%s", pubErr)
}
