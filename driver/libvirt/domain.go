package libvirt

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/meterkit/meter"
)

// NovaNamespacePrefix starts the namespace of the metadata element Nova
// writes into a domain's XML (".../nova/1.1" today).
const NovaNamespacePrefix = "http://openstack.org/xmlns/libvirt/nova/"

// domainXML is the part of a domain's XML the driver reads. Element names
// carry no namespace so that any version of Nova's metadata matches; the
// namespace of <instance> is checked afterwards.
type domainXML struct {
	Name     string `xml:"name"`
	UUID     string `xml:"uuid"`
	Metadata struct {
		Instances []novaInstance `xml:"instance"`
	} `xml:"metadata"`
	Devices struct {
		Disks []struct {
			Source *struct{} `xml:"source"`
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
		} `xml:"disk"`
		Interfaces []struct {
			MAC struct {
				Address string `xml:"address,attr"`
			} `xml:"mac"`
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
		} `xml:"interface"`
	} `xml:"devices"`
}

// novaInstance is Nova's <nova:instance> metadata element.
type novaInstance struct {
	XMLName xml.Name
	Name    string `xml:"name"`
	Flavor  struct {
		Name string `xml:"name,attr"`
	} `xml:"flavor"`
	Owner struct {
		User struct {
			UUID string `xml:"uuid,attr"`
		} `xml:"user"`
		Project struct {
			UUID string `xml:"uuid,attr"`
		} `xml:"project"`
	} `xml:"owner"`
	// Root is the instance's root disk: type "image" with the Glance
	// image's uuid for an instance booted from an image; absent for one
	// booted from a volume.
	Root struct {
		Type string `xml:"type,attr"`
		UUID string `xml:"uuid,attr"`
	} `xml:"root"`
}

// device is a disk or vNIC of a domain with its resource id and labels,
// made once per domain XML read.
type device struct {
	name     string
	resource string
	labels   []meter.Label
}

// domainMeta is what the driver keeps per domain UUID between collections:
// the parsed XML, the ids and the label slices shared by every measurement
// (immutable once made).
type domainMeta struct {
	id   int32 // libvirt's id of the running domain: a new one means a restart
	read time.Time
	gen  uint64 // last collection that saw the domain
	// stale is set when stats named a device the XML did not list.
	stale bool

	uuid, project, user string
	instLabels          []meter.Label
	vcpus               uint32 // what cpuLabels says
	cpuLabels           []meter.Label
	disks, nics         []device
}

// parseDomain builds a domainMeta from a domain's XML.
func parseDomain(desc string) (*domainMeta, error) {
	var x domainXML
	if err := xml.Unmarshal([]byte(desc), &x); err != nil {
		return nil, err
	}
	if x.UUID == "" || x.Name == "" {
		return nil, fmt.Errorf("domain XML without name or uuid")
	}
	m := &domainMeta{uuid: x.UUID}
	inst := []meter.Label{{Key: "instance_name", Value: x.Name}}
	for i := range x.Metadata.Instances {
		n := &x.Metadata.Instances[i]
		if !strings.HasPrefix(n.XMLName.Space, NovaNamespacePrefix) {
			continue
		}
		m.project, m.user = n.Owner.Project.UUID, n.Owner.User.UUID
		if n.Name != "" {
			inst = append(inst, meter.Label{Key: "display_name", Value: n.Name})
		}
		if n.Flavor.Name != "" {
			inst = append(inst, meter.Label{Key: "flavor", Value: n.Flavor.Name})
		}
		if n.Root.Type == "image" && n.Root.UUID != "" {
			inst = append(inst, meter.Label{Key: "image_ref", Value: n.Root.UUID})
		}
		break
	}
	m.instLabels = inst
	withID := append(inst[:len(inst):len(inst)], meter.Label{Key: "instance_id", Value: x.UUID})
	for _, dk := range x.Devices.Disks {
		// Like Ceilometer: disks with a target and a source (an empty
		// CD-ROM drive has none).
		if dk.Target.Dev == "" || dk.Source == nil {
			continue
		}
		m.disks = append(m.disks, device{
			name:     dk.Target.Dev,
			resource: x.UUID + "-" + dk.Target.Dev,
			labels:   append(withID[:len(withID):len(withID)], meter.Label{Key: "disk_name", Value: dk.Target.Dev}),
		})
	}
	for _, nic := range x.Devices.Interfaces {
		if nic.Target.Dev == "" {
			continue // not plugged in on the host
		}
		ls := append(withID[:len(withID):len(withID)], meter.Label{Key: "vnic_name", Value: nic.Target.Dev})
		if nic.MAC.Address != "" {
			ls = append(ls, meter.Label{Key: "mac", Value: nic.MAC.Address})
		}
		m.nics = append(m.nics, device{
			name:     nic.Target.Dev,
			resource: x.Name + "-" + x.UUID + "-" + nic.Target.Dev,
			labels:   ls,
		})
	}
	return m, nil
}

// cpuLabelsFor returns the instance labels plus vcpus=n, made again only
// when n changes.
func (m *domainMeta) cpuLabelsFor(n uint32) []meter.Label {
	if m.cpuLabels == nil || m.vcpus != n {
		m.vcpus = n
		m.cpuLabels = append(m.instLabels[:len(m.instLabels):len(m.instLabels)],
			meter.Label{Key: "vcpus", Value: strconv.FormatUint(uint64(n), 10)})
	}
	return m.cpuLabels
}

// meta returns the cached metadata of dom, reading its XML when there is
// none, when the domain was restarted, when stats named an unknown device
// or when the cache entry is older than the refresh interval.
func (d *Driver) meta(lv *golibvirt.Libvirt, dom golibvirt.Domain, now time.Time) (*domainMeta, error) {
	d.cacheMu.Lock()
	m := d.cache[dom.UUID]
	if m != nil && m.id == dom.ID && !m.stale && now.Sub(m.read) < d.refresh {
		m.gen = d.gen
		d.cacheMu.Unlock()
		return m, nil
	}
	d.cacheMu.Unlock()
	desc, err := lv.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return nil, rpcError("read the XML", dom, err)
	}
	nm, err := parseDomain(desc)
	if err != nil {
		return nil, fmt.Errorf("libvirt: domain %s: %w", dom.Name, err)
	}
	nm.id, nm.read, nm.gen = dom.ID, now, d.gen
	d.cacheMu.Lock()
	d.cache[dom.UUID] = nm
	d.cacheMu.Unlock()
	return nm, nil
}

// rpcError wraps an RPC's error with what was done to which domain, as a
// *connError when the daemon did not answer.
func rpcError(op string, dom golibvirt.Domain, err error) error {
	err = fmt.Errorf("libvirt: %s of domain %s: %w", op, dom.Name, err)
	if isServerError(err) {
		return err
	}
	return &connError{err}
}
