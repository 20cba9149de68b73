// Package host provides drivers that measure the Linux machine the agent
// runs on, read from /proc (with github.com/prometheus/procfs), /sys and
// statfs(2). Import it for its side effect of registering the drivers:
//
//	import _ "github.com/meterkit/meter/driver/host"
//
// and open them by name with driver.Open: "cpu", "memory", "swap", "load",
// "disk", "filesystem", "network", "uptime" and "processes" (Names lists
// them).
//
// # Configuration
//
// Each driver decodes its configuration with driver.Config.Decode into
// CPUConfig, DiskConfig, FilesystemConfig, NetworkConfig or, for the
// drivers that only read /proc, ProcConfig. The zero value is the default
// and unknown fields are an error. Every driver takes "proc_root" (default
// "/proc"); "disk" also takes "sys_root" (default "/sys") and "filesystem"
// takes "root" (default "/"), so an agent in a container can read the
// host's trees mounted elsewhere, and tests can read fixture files:
//
//	{"proc_root": "/host/proc", "total_only": true}
//
// # Measurements
//
// Names are lower-case and dot-separated, from the general to the
// particular. The drivers fill Time with the time of the collection and
// leave Host empty for the agent to fill. ResourceID is empty for
// host-wide series. Counts have no unit. Cumulative series count from boot
// and restart at zero when the machine does.
//
//	name                      kind        unit  resource id            labels            driver
//	cpu.util                  gauge       %     total, cpu0, cpu1 ...  -                 cpu
//	cpu.time                  cumulative  s     total, cpu0, cpu1 ...  mode              cpu
//	memory.total              gauge       B     -                      -                 memory
//	memory.used               gauge       B     -                      -                 memory
//	memory.available          gauge       B     -                      -                 memory
//	memory.free               gauge       B     -                      -                 memory
//	memory.buffers            gauge       B     -                      -                 memory
//	memory.cached             gauge       B     -                      -                 memory
//	swap.total                gauge       B     -                      -                 swap
//	swap.used                 gauge       B     -                      -                 swap
//	swap.free                 gauge       B     -                      -                 swap
//	load.1                    gauge       -     -                      -                 load
//	load.5                    gauge       -     -                      -                 load
//	load.15                   gauge       -     -                      -                 load
//	disk.read.bytes           cumulative  B     device (sda)           -                 disk
//	disk.write.bytes          cumulative  B     device (sda)           -                 disk
//	disk.read.ops             cumulative  -     device (sda)           -                 disk
//	disk.write.ops            cumulative  -     device (sda)           -                 disk
//	disk.io.time              cumulative  s     device (sda)           -                 disk
//	filesystem.size           gauge       B     mount point (/home)    fstype, device    filesystem
//	filesystem.used           gauge       B     mount point (/home)    fstype, device    filesystem
//	filesystem.available      gauge       B     mount point (/home)    fstype, device    filesystem
//	filesystem.inodes.total   gauge       -     mount point (/home)    fstype, device    filesystem
//	filesystem.inodes.used    gauge       -     mount point (/home)    fstype, device    filesystem
//	filesystem.inodes.free    gauge       -     mount point (/home)    fstype, device    filesystem
//	network.rx.bytes          cumulative  B     interface (eth0)       -                 network
//	network.rx.packets        cumulative  -     interface (eth0)       -                 network
//	network.rx.errors         cumulative  -     interface (eth0)       -                 network
//	network.rx.drops          cumulative  -     interface (eth0)       -                 network
//	network.tx.bytes          cumulative  B     interface (eth0)       -                 network
//	network.tx.packets        cumulative  -     interface (eth0)       -                 network
//	network.tx.errors         cumulative  -     interface (eth0)       -                 network
//	network.tx.drops          cumulative  -     interface (eth0)       -                 network
//	uptime                    gauge       s     -                      -                 uptime
//	processes.running         gauge       -     -                      -                 processes
//	processes.blocked         gauge       -     -                      -                 processes
//	processes.total           gauge       -     -                      -                 processes
//	processes.threads         gauge       -     -                      -                 processes
//	processes.created         cumulative  -     -                      -                 processes
//
// Notes on the series:
//
//   - cpu.util is the share of time a CPU was busy (not idle, not waiting
//     for I/O) between two collections, so the first collection of a driver
//     has none. cpu.time has one series per mode: user, nice, system, idle,
//     iowait, irq, softirq and steal (guest time is already in user and
//     nice).
//   - memory.used is memory.total minus memory.available (MemAvailable of
//     /proc/meminfo); memory.cached is the Cached line.
//   - disk reports whole disks: devices listed in /sys/block, minus those
//     starting with "loop" or "ram" (DiskConfig changes both). Bytes count
//     512-byte sectors, as the kernel does whatever the hardware's sector
//     size; disk.io.time is the time the device had I/O in flight.
//   - filesystem reports each mount point once (the mount on top), skips
//     pseudo filesystems (proc, sysfs, cgroup, devpts, squashfs, ...),
//     tmpfs unless FilesystemConfig.IncludeTmpfs, and any filesystem of
//     size zero. overlay is reported: it is a container's root.
//     filesystem.available is what unprivileged users may still use.
//   - processes.total counts the process directories of /proc;
//     processes.threads is the thread count from /proc/loadavg;
//     processes.created counts forks since boot.
//
// # Memory reuse
//
// To allocate little per collection, a driver reuses the slice it returned
// from the previous Collect, and shares label slices between collections.
// The agent copies measurements as it receives them; other callers must
// copy what they keep before calling Collect again, and must not modify
// labels.
//
// The cpu driver keeps the previous counters between collections, so like
// every driver it must not be called concurrently.
package host
