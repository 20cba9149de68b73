// Package libvirt provides the "libvirt" driver: it meters the instances
// (domains) of a compute node through the libvirt daemon, with Ceilometer's
// meter names, units, resource ids and owners, the way Ceilometer's compute
// agent and Watcher's metering agent do. It speaks the daemon's RPC protocol
// with github.com/digitalocean/go-libvirt (pure Go: no cgo, no libvirt.so).
// Import it for its side effect:
//
//	import _ "github.com/meterkit/meter/driver/libvirt"
//
// # Configuration
//
// The driver decodes Config with driver.Config.Decode; unknown fields are
// an error. The zero value meters qemu:///system through
// /var/run/libvirt/libvirt-sock.
//
//	uri               libvirt URI (default "qemu:///system"); transports unix
//	                  (default) and tcp ("qemu+tcp://host:16509/system")
//	socket            the daemon's unix socket; overrides the URI's ?socket=
//	                  (default /var/run/libvirt/libvirt-sock; the read-only
//	                  libvirt-sock-ro is enough)
//	dial_timeout      bound of a dial and of opening the connection (default "5s")
//	metadata_refresh  how long a domain's parsed XML is kept (default "10m")
//	stats             "auto" (default), "bulk" or "domain": see Statistics
//
// For the reference agent's -config file, and for libvirt's built-in test
// driver served by a local daemon (what the integration tests use):
//
//	{"libvirt": {}}
//	{"libvirt": {"uri": "test:///abs/path/node.xml", "socket": "/tmp/lv/run/libvirt-sock"}}
//
// # Measurements
//
// Per metered domain, with ResourceID, ProjectID and UserID as below and
// Time the time the domain was read (Host is left to the agent):
//
//	name                            kind        unit     resource id                      labels
//	cpu                             cumulative  ns       <uuid>                           instance, vcpus
//	vcpus                           gauge       vcpu     <uuid>                           instance
//	memory                          gauge       MB       <uuid>                           instance
//	memory.usage                    gauge       MB       <uuid>                           instance
//	memory.resident                 gauge       MB       <uuid>                           instance
//	disk.device.read.bytes          cumulative  B        <uuid>-<disk target>             disk
//	disk.device.read.requests       cumulative  request  <uuid>-<disk target>             disk
//	disk.device.write.bytes         cumulative  B        <uuid>-<disk target>             disk
//	disk.device.write.requests      cumulative  request  <uuid>-<disk target>             disk
//	network.incoming.bytes          cumulative  B        <name>-<uuid>-<vnic target>      vnic
//	network.incoming.packets        cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//	network.incoming.packets.drop   cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//	network.incoming.packets.error  cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//	network.outgoing.bytes          cumulative  B        <name>-<uuid>-<vnic target>      vnic
//	network.outgoing.packets        cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//	network.outgoing.packets.drop   cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//	network.outgoing.packets.error  cumulative  packet   <name>-<uuid>-<vnic target>      vnic
//
// <uuid> is the domain's UUID, which for a Nova instance is the instance
// id; <name> is the libvirt domain name (Nova's instance name,
// "instance-0000002a"); targets are the <target dev=…> of the domain XML
// ("vda", "tap3f5c0e2a-1b"), as in Ceilometer's resource ids. The labels:
//
//	instance  instance_name (libvirt domain name), display_name (nova:name),
//	          flavor (nova:flavor name), image_ref (the Glance image's uuid
//	          of <nova:root type="image">, absent for an instance booted
//	          from a volume); all but the first only with Nova metadata
//	vcpus     the number of virtual CPUs, on cpu (for a rate per vCPU)
//	disk      instance labels, instance_id (<uuid>), disk_name (target)
//	vnic      instance labels, instance_id (<uuid>), vnic_name (target), mac
//
// ProjectID and UserID are the uuid attributes of <nova:project> and
// <nova:user> in the <nova:owner> element of Nova's metadata
// (namespace http://openstack.org/xmlns/libvirt/nova/1.1, or any version
// under NovaNamespacePrefix); a domain without it has neither and only
// instance_name among its labels.
//
// The values: cpu is the domain's CPU time (DomainGetInfo), vcpus its
// number of virtual CPUs; memory is its maximum memory (for Nova the
// flavor's RAM), memory.usage is the balloon's available minus unused
// memory (what the guest uses) and memory.resident the hypervisor process's
// resident set, both from the balloon statistics: a domain without a
// balloon device (<memballoon>) has neither, and that is not an error. The
// disks are those of the XML with a target and a source (an empty CD-ROM
// drive has none); the vNICs those with a target device. A counter the
// hypervisor reports as -1 (not kept) is left out.
//
// # Domain states
//
// Active domains are metered: running, blocked, paused, being shut down
// and suspended (pmsuspended). A paused QEMU domain keeps its counters,
// which stop growing, so a rate over it reads 0 (libvirt's test driver
// keeps counting with the wall clock, paused or not). Shut-off domains are inactive
// and not listed, so they have no measurements, as in Ceilometer, whose
// inspector skips them; crashed domains and domains in no state neither. A
// domain that shuts off or disappears during a collection ("domain is not
// running") is skipped without an error.
//
// # Statistics: bulk and per domain
//
// With stats "auto", the first collection on a connection asks for every
// active domain's statistics in one ConnectGetAllDomainStats call (groups
// state, cpu-total, balloon, vcpu, interface, block). When the daemon
// answers without the cpu-total group for a running domain, as libvirt's
// test driver does (it implements only the state group), or rejects the
// call, the driver reads the domains one call per kind and device instead
// (ConnectListAllDomains, DomainGetInfo, DomainMemoryStats,
// DomainBlockStats, DomainInterfaceStats), four domains at a time on the
// one connection, until the next connection. "bulk" and "domain" fix the
// path. Both paths emit the same measurements.
//
// Against libvirtd's test driver on 2 shared cores, a per-domain
// collection of 100 domains (2 disks and 2 vNICs each, 601 calls) takes
// about 50-110 ms, of which the driver's own CPU is about 16-22 ms
// (BenchmarkLibvirtCollect100, build tag integration).
//
// # Domain XML cache
//
// A domain's XML (DomainGetXMLDesc) is parsed into its disks, vNICs,
// owner and labels (Nova's metadata with them) once and kept per UUID: it is read again when the
// domain's id changes (it was restarted, and may have other devices), when
// statistics name a device the XML did not list (a hot-plugged disk or
// vNIC), and after metadata_refresh. Entries of domains no longer listed
// are dropped at the end of each collection.
//
// # Connection
//
// A driver holds one connection, dialled by the first collection. When the
// daemon goes away (it restarts, or is upgraded) the next collection dials
// again; a collection whose connection breaks midway dials once more and
// starts over. go-libvirt's calls take no ctx: when a collection's ctx ends
// the driver closes the connection so that the call in flight returns, and
// the next collection dials again. Close sends the daemon a goodbye (at
// most 1 s) and closes the connection.
//
// # cpu_util
//
// The driver reports cpu as Ceilometer does, a cumulative count of
// nanoseconds; the utilisation is a rate of it, which belongs in the
// agent's stages (the only place that sees the whole series in order): the
// rate stage (package stage/rate), in the agent's -stages file:
//
//	# stages.yaml
//	- type: rate
//	  meters: ["cpu"]
//	  as: cpu_util
//	  percent_of: vcpus    # the label vcpus: a share of the vCPUs, in %
//
// The stage brings ns to seconds itself. With one vCPU busy all the time
// cpu grows 1e9 ns per second, and cpu_util reads 100 with vcpus=1, 50
// with vcpus=2. libvirt's test driver reports a domain's CPU time as the
// wall clock (paused or not), so through the reference agent with this
// stage its 1-vCPU domains read about 100%: 99.99-100.00% on an idle
// machine, up to 102% on a loaded one, since the measurement's time is
// taken apart from the CPU time call
// (TestLibvirtCPUUtilThroughTheAgentsRateStage in examples/e2e).
//
// # Gnocchi
//
// The Gnocchi sink (sink/gnocchi) knows these meters: by default it
// creates Ceilometer's resource types for them, instance, instance_disk
// and instance_network_interface, with their required attributes taken
// from the labels above (see gnocchi.DefaultResourceTypes).
//
// # Memory reuse
//
// To allocate little per collection, the driver reuses the slice it
// returned from the previous Collect and shares label slices between
// collections. The agent copies measurements as it receives them; other
// callers must copy what they keep before calling Collect again, and must
// not modify labels. Like every driver it must not be called concurrently.
package libvirt
