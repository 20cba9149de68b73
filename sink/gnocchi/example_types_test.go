package gnocchi_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/meterkit/meter/sink/gnocchi"
)

// The built-in resource types: which of driver/libvirt's meters make which
// of Ceilometer's resource types (volume and image only for measurements
// labelled gnocchi.resource_type, as driver/notification's are), and the
// labels their attributes come from.
func ExampleDefaultResourceTypes() {
	for _, t := range gnocchi.DefaultResourceTypes() {
		var attrs []string
		for a, l := range t.Attributes {
			attrs = append(attrs, a+"<-"+l)
		}
		slices.Sort(attrs)
		fmt.Println(t.Name, t.Meters, attrs)
	}
	// Output:
	// instance [cpu vcpus memory memory.usage memory.resident] [display_name<-display_name flavor_id<-flavor_id flavor_name<-flavor|flavor_name host<-host image_ref<-image_ref server_group<-server_group]
	// instance_disk [disk.device.*] [instance_id<-instance_id name<-disk_name]
	// instance_network_interface [network.incoming.* network.outgoing.*] [instance_id<-instance_id name<-vnic_name]
	// volume [] [display_name<-display_name image_id<-image_id instance_id<-instance_id volume_type<-volume_type]
	// image [] [container_format<-container_format disk_format<-disk_format name<-name]
}

// A type of one's own by meter pattern, in place of the built-in ones: a
// measurement may still name its type with the label gnocchi.resource_type.
func ExampleWithResourceTypes() {
	s, err := gnocchi.New(gnocchi.WithEndpoint("http://gnocchi.example:8041/"), gnocchi.WithBasicAuth(""),
		gnocchi.WithResourceTypes(gnocchi.ResourceType{
			Name:       "switch_port",
			Meters:     []string{"switch.port.*"},
			Attributes: map[string]string{"switch": "switch", "port": "ifname"},
		}))
	fmt.Println(err)
	_ = s.Close(context.Background())
	// Output: <nil>
}
