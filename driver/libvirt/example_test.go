package libvirt

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/meterkit/meter/driver"
)

// Open the driver by name, as the agent does from its config file, and
// collect once. A stand-in daemon answers here as a QEMU host's libvirtd
// would; on a compute node the config is just {} (qemu:///system).
func Example() {
	dir, err := os.MkdirTemp("", "libvirt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	daemon, err := newFake(filepath.Join(dir, "libvirt-sock"), qemuHost)
	if err != nil {
		log.Fatal(err)
	}
	defer daemon.close()

	cfg := driver.ConfigFromJSON([]byte(`{"socket": "` + daemon.socket + `"}`))
	d, err := driver.Open("libvirt", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer d.(*Driver).Close()
	ms, err := d.Collect(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range ms[:7] {
		fmt.Printf("%s %s %v %s project=%s", m.Name, m.ResourceID, m.Value, m.Unit, m.ProjectID)
		for _, l := range m.Labels {
			fmt.Printf(" %s=%s", l.Key, l.Value)
		}
		fmt.Println()
	}
	// Output:
	// cpu 6f1b2c3d-0a1b-4c5d-8e9f-000000000001 1.23456789012e+11 ns project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001 vcpus=1
	// vcpus 6f1b2c3d-0a1b-4c5d-8e9f-000000000001 1 vcpu project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001
	// memory 6f1b2c3d-0a1b-4c5d-8e9f-000000000001 2048 MB project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001
	// memory.usage 6f1b2c3d-0a1b-4c5d-8e9f-000000000001 527.34375 MB project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001
	// memory.resident 6f1b2c3d-0a1b-4c5d-8e9f-000000000001 683.59375 MB project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001
	// disk.device.read.bytes 6f1b2c3d-0a1b-4c5d-8e9f-000000000001-vda 409600 B project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001 instance_id=6f1b2c3d-0a1b-4c5d-8e9f-000000000001 disk_name=vda
	// disk.device.read.requests 6f1b2c3d-0a1b-4c5d-8e9f-000000000001-vda 100 request project=0f1e2d3c4b5a69788796a5b4c3d2e1f0 instance_name=instance-00000001 display_name=web-1 flavor=m1.small image_ref=9d1f2c3a-0000-4000-8000-000000000001 instance_id=6f1b2c3d-0a1b-4c5d-8e9f-000000000001 disk_name=vda
}
