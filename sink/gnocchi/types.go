package gnocchi

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/meterkit/meter"
)

// ResourceTypeLabel is the label that names, per measurement, the Gnocchi
// resource type of the resource the sink creates for it; it wins over the
// sink's ResourceTypes and WithResourceType. Its attributes are those of the
// ResourceType of that name, if the sink has one, else the labels named by
// WithResourceAttributes. The label itself is never stored.
const ResourceTypeLabel = "gnocchi.resource_type"

// ResourceType says which measurements make resources of one Gnocchi
// resource type, and where the type's attributes come from.
type ResourceType struct {
	// Name is the Gnocchi resource type ("instance").
	Name string
	// Meters are patterns (path.Match: "disk.device.*") of the measurement
	// names whose resources are of this type. Empty: only measurements
	// labelled ResourceTypeLabel with Name.
	Meters []string
	// IfLabel, when set, restricts Meters to measurements that carry this
	// label (the built-in types ask for libvirt's instance_name, so that
	// another driver's "cpu" stays generic).
	IfLabel string
	// Attributes maps each attribute of a created resource to the label it
	// takes its value from, or to labels separated by "|" of which the
	// first the measurement carries gives it ("flavor|flavor_name": the
	// libvirt driver's label, else the notification driver's); the
	// attribute "host" falls back to the measurement's Host. A label the
	// measurement lacks leaves the attribute out, unless Defaults gives it
	// a value.
	Attributes map[string]string
	// Defaults are attribute values for labels the measurement lacks: a
	// required attribute the source cannot know (libvirt cannot know the
	// flavor id) is created empty rather than refused.
	Defaults map[string]string
}

// DefaultResourceTypes are resource types of Ceilometer's
// gnocchi_resources.yaml, with the attributes that Ceilometer's
// ceilometer-upgrade step creates the types with: those for the meters of
// driver/libvirt (measurements labelled instance_name), and those the
// shipped meter definitions of driver/notification name with the label
// gnocchi.resource_type (ResourceTypeLabel):
//
//	type                        meters                                      attributes (label)
//	instance                    cpu, vcpus, memory, memory.usage,           host (Host), display_name, flavor_name (flavor, else
//	                            memory.resident; labelled instance          flavor_name), flavor_id, image_ref, server_group
//	instance_disk               disk.device.*                               name (disk_name), instance_id
//	instance_network_interface  network.incoming.*, network.outgoing.*      name (vnic_name), instance_id
//	volume                      labelled volume                             display_name, volume_type, image_id, instance_id
//	image                       labelled image                              name, container_format, disk_format
//
// The required ones (instance: flavor_id, flavor_name, host, display_name;
// instance_disk and instance_network_interface: name, instance_id; image:
// name, container_format, disk_format) are created empty when their label
// is missing: Nova's metadata in the domain XML has no flavor id
// (Ceilometer asks Nova's API for it), and a domain without Nova metadata
// has no display name or flavor. The optional ones are left out when
// their label is missing. The types must exist in Gnocchi:
// ceilometer-upgrade makes them.
func DefaultResourceTypes() []ResourceType {
	return []ResourceType{
		{
			Name:    "instance",
			Meters:  []string{"cpu", "vcpus", "memory", "memory.usage", "memory.resident"},
			IfLabel: "instance_name",
			Attributes: map[string]string{"host": "host", "display_name": "display_name", "flavor_name": "flavor|flavor_name",
				"flavor_id": "flavor_id", "image_ref": "image_ref", "server_group": "server_group"},
			Defaults: map[string]string{"display_name": "", "flavor_name": "", "flavor_id": ""},
		},
		{
			Name:       "instance_disk",
			Meters:     []string{"disk.device.*"},
			IfLabel:    "instance_name",
			Attributes: map[string]string{"name": "disk_name", "instance_id": "instance_id"},
			Defaults:   map[string]string{"name": ""},
		},
		{
			Name:       "instance_network_interface",
			Meters:     []string{"network.incoming.*", "network.outgoing.*"},
			IfLabel:    "instance_name",
			Attributes: map[string]string{"name": "vnic_name", "instance_id": "instance_id"},
			Defaults:   map[string]string{"name": ""},
		},
		{
			Name: "volume",
			Attributes: map[string]string{"display_name": "display_name", "volume_type": "volume_type",
				"image_id": "image_id", "instance_id": "instance_id"},
		},
		{
			Name:       "image",
			Attributes: map[string]string{"name": "name", "container_format": "container_format", "disk_format": "disk_format"},
			Defaults:   map[string]string{"name": "", "container_format": "", "disk_format": ""},
		},
	}
}

// WithResourceTypes replaces DefaultResourceTypes: the first type whose
// Meters match a measurement (and whose IfLabel it carries) is the type of
// the resource created for it; a measurement no type matches gets
// WithResourceType's type with WithResourceAttributes's attributes. No
// types at all turns the built-in ones off. A name, a bad pattern, an
// attribute that cannot be one or a "meterkit." label is an error.
func WithResourceTypes(types ...ResourceType) Option {
	return func(c *config) error {
		out := make([]ResourceType, 0, len(types))
		for _, t := range types {
			if t.Name == "" {
				return errors.New("WithResourceTypes: a type without a name")
			}
			for _, p := range t.Meters {
				if _, err := path.Match(p, ""); err != nil {
					return fmt.Errorf("WithResourceTypes: type %s: meters pattern %q: %w", t.Name, p, err)
				}
			}
			for attr, label := range t.Attributes {
				if attr == "" || attr == "id" || attr == "project_id" || attr == "user_id" {
					return fmt.Errorf("WithResourceTypes: type %s: %q cannot be a label attribute", t.Name, attr)
				}
				for l := range strings.SplitSeq(label, "|") {
					if l == "" && label != "" {
						return fmt.Errorf("WithResourceTypes: type %s: attribute %s: empty label in %q", t.Name, attr, label)
					}
					if strings.HasPrefix(l, meter.ReservedPrefix) {
						return fmt.Errorf("WithResourceTypes: type %s: attribute %s: labels prefixed %q are meterkit's own and never stored", t.Name, attr, meter.ReservedPrefix)
					}
				}
			}
			t.Meters = slices.Clone(t.Meters)
			t.Attributes, t.Defaults = maps.Clone(t.Attributes), maps.Clone(t.Defaults)
			out = append(out, t)
		}
		c.types = out
		return nil
	}
}

// typeOf returns the resource type of the resource created for m and its
// attributes.
func (s *Sink) typeOf(m *meter.Measurement) (string, map[string]any) {
	name, labelled := m.Label(ResourceTypeLabel)
	var rt *ResourceType
	for i := range s.cfg.types {
		t := &s.cfg.types[i]
		if labelled {
			if t.Name == name {
				rt = t
				break
			}
			continue
		}
		if t.IfLabel != "" {
			if _, ok := m.Label(t.IfLabel); !ok {
				continue
			}
		}
		if slices.ContainsFunc(t.Meters, func(p string) bool { ok, _ := path.Match(p, m.Name); return ok }) {
			rt = t
			break
		}
	}
	if rt == nil {
		if !labelled {
			name = s.cfg.resourceType
		}
		return name, attributes(m, s.cfg.attrs, nil)
	}
	return rt.Name, attributes(m, slices.Collect(maps.Keys(rt.Attributes)), func(attr string) (string, bool) {
		for l := range strings.SplitSeq(rt.Attributes[attr], "|") {
			if v, ok := m.Label(l); ok {
				return v, true
			}
		}
		if attr == "host" && rt.Attributes[attr] == "host" && m.Host != "" {
			return m.Host, true
		}
		v, ok := rt.Defaults[attr]
		return v, ok
	})
}

// attributes returns the attributes named by keys, from the labels of the
// same names (the attribute "host" falling back to Host) or from value.
func attributes(m *meter.Measurement, keys []string, value func(attr string) (string, bool)) map[string]any {
	var out map[string]any
	for _, k := range keys {
		var v string
		var ok bool
		if value != nil {
			v, ok = value(k)
		} else if v, ok = m.Label(k); !ok && k == "host" && m.Host != "" {
			v, ok = m.Host, true
		}
		if ok {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}
