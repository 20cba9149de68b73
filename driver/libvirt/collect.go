package libvirt

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/meterkit/meter"
)

type desc struct {
	name string
	kind meter.Kind
	unit string
}

// The meters, with Ceilometer's names and units.
var (
	mCPU             = desc{"cpu", meter.Cumulative, "ns"}
	mVCPUs           = desc{"vcpus", meter.Gauge, "vcpu"}
	mMemory          = desc{"memory", meter.Gauge, "MB"}
	mMemoryUsage     = desc{"memory.usage", meter.Gauge, "MB"}
	mMemoryResident  = desc{"memory.resident", meter.Gauge, "MB"}
	mDiskReadBytes   = desc{"disk.device.read.bytes", meter.Cumulative, "B"}
	mDiskReadReqs    = desc{"disk.device.read.requests", meter.Cumulative, "request"}
	mDiskWriteBytes  = desc{"disk.device.write.bytes", meter.Cumulative, "B"}
	mDiskWriteReqs   = desc{"disk.device.write.requests", meter.Cumulative, "request"}
	mNetInBytes      = desc{"network.incoming.bytes", meter.Cumulative, "B"}
	mNetInPackets    = desc{"network.incoming.packets", meter.Cumulative, "packet"}
	mNetInDrops      = desc{"network.incoming.packets.drop", meter.Cumulative, "packet"}
	mNetInErrors     = desc{"network.incoming.packets.error", meter.Cumulative, "packet"}
	mNetOutBytes     = desc{"network.outgoing.bytes", meter.Cumulative, "B"}
	mNetOutPackets   = desc{"network.outgoing.packets", meter.Cumulative, "packet"}
	mNetOutDrops     = desc{"network.outgoing.packets.drop", meter.Cumulative, "packet"}
	mNetOutErrors    = desc{"network.outgoing.packets.error", meter.Cumulative, "packet"}
	metered          = [...]bool{golibvirt.DomainRunning: true, golibvirt.DomainBlocked: true, golibvirt.DomainPaused: true, golibvirt.DomainShutdown: true, golibvirt.DomainPmsuspended: true}
	errNoDomainStats = errors.New("the daemon reports no stats groups")
)

// domStats is one domain's statistics, from either path.
type domStats struct {
	state     int32
	cpuTime   uint64
	haveCPU   bool
	vcpus     uint32
	maxMemKiB uint64
	haveMax   bool

	availKiB, unusedKiB, rssKiB    uint64
	haveAvail, haveUnused, haveRSS bool

	disks []blockStat
	nics  []ifStat
}

type blockStat struct {
	name                                   string
	rdReq, rdBytes, wrReq, wrBytes         int64
	haveRdReq, haveRdB, haveWrReq, haveWrB bool
}

type ifStat struct {
	name                               string
	rxBytes, rxPackets, rxErrs, rxDrop int64
	txBytes, txPackets, txErrs, txDrop int64
}

func (s *domStats) reset() {
	*s = domStats{disks: s.disks[:0], nics: s.nics[:0]}
}

func (m desc) at(now time.Time, meta *domainMeta, res string, v float64, labels []meter.Label) meter.Measurement {
	return meter.Measurement{
		Name: m.name, Kind: m.kind, Unit: m.unit, Value: v, Time: now,
		ResourceID: res, ProjectID: meta.project, UserID: meta.user, Labels: labels,
	}
}

// appendDomain appends the measurements of one domain's statistics.
func appendDomain(out []meter.Measurement, now time.Time, meta *domainMeta, s *domStats) []meter.Measurement {
	id := meta.uuid
	if s.haveCPU {
		out = append(out, mCPU.at(now, meta, id, float64(s.cpuTime), meta.cpuLabelsFor(s.vcpus)))
	}
	if s.vcpus > 0 {
		out = append(out, mVCPUs.at(now, meta, id, float64(s.vcpus), meta.instLabels))
	}
	if s.haveMax {
		out = append(out, mMemory.at(now, meta, id, float64(s.maxMemKiB)/1024, meta.instLabels))
	}
	if s.haveAvail && s.haveUnused && s.availKiB >= s.unusedKiB {
		out = append(out, mMemoryUsage.at(now, meta, id, float64(s.availKiB-s.unusedKiB)/1024, meta.instLabels))
	}
	if s.haveRSS {
		out = append(out, mMemoryResident.at(now, meta, id, float64(s.rssKiB)/1024, meta.instLabels))
	}
	for i := range s.disks {
		b := &s.disks[i]
		dev := findDevice(meta.disks, b.name)
		if dev == nil {
			meta.stale = true // a disk the XML did not list: read it again
			continue
		}
		if b.haveRdB {
			out = append(out, mDiskReadBytes.at(now, meta, dev.resource, float64(b.rdBytes), dev.labels))
		}
		if b.haveRdReq {
			out = append(out, mDiskReadReqs.at(now, meta, dev.resource, float64(b.rdReq), dev.labels))
		}
		if b.haveWrB {
			out = append(out, mDiskWriteBytes.at(now, meta, dev.resource, float64(b.wrBytes), dev.labels))
		}
		if b.haveWrReq {
			out = append(out, mDiskWriteReqs.at(now, meta, dev.resource, float64(b.wrReq), dev.labels))
		}
	}
	for i := range s.nics {
		n := &s.nics[i]
		dev := findDevice(meta.nics, n.name)
		if dev == nil {
			meta.stale = true
			continue
		}
		r, l := dev.resource, dev.labels
		for _, c := range [...]struct {
			m desc
			v int64
		}{
			{mNetInBytes, n.rxBytes}, {mNetInPackets, n.rxPackets}, {mNetInDrops, n.rxDrop}, {mNetInErrors, n.rxErrs},
			{mNetOutBytes, n.txBytes}, {mNetOutPackets, n.txPackets}, {mNetOutDrops, n.txDrop}, {mNetOutErrors, n.txErrs},
		} {
			if c.v >= 0 { // libvirt reports -1 for a counter the hypervisor does not keep
				out = append(out, c.m.at(now, meta, r, float64(c.v), l))
			}
		}
	}
	return out
}

func findDevice(ds []device, name string) *device {
	for i := range ds {
		if ds[i].name == name {
			return &ds[i]
		}
	}
	return nil
}

// isMetered reports whether a domain in this state is metered: running,
// blocked, paused, being shut down or suspended; not shut off, crashed or
// in no state.
func isMetered(state int32) bool {
	return state >= 0 && int(state) < len(metered) && metered[state]
}

// collect makes one collection on lv. Errors about one domain or device do
// not stop it; a *connError does.
func (d *Driver) collect(lv *golibvirt.Libvirt) ([]meter.Measurement, error) {
	d.gen++
	out := d.out[:0]
	var errs []error
	var err error
	if d.bulk >= 0 {
		out, errs, err = d.collectBulk(lv, out)
		if errors.Is(err, errNoDomainStats) && d.bulk == 0 {
			d.bulk = -1
			err = nil
			out = out[:0]
		} else if err == nil && d.bulk == 0 && len(out) > 0 {
			d.bulk = 1
		}
	}
	if d.bulk < 0 && err == nil {
		out, errs, err = d.collectPerDomain(lv, out)
	}
	d.out = out
	for uuid, m := range d.cache {
		if m.gen != d.gen {
			delete(d.cache, uuid)
		}
	}
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// parallelCalls is how many domains the per-domain path reads at once on
// the one connection: libvirtd serves a client's requests concurrently (up
// to max_client_requests, 5 by default), and most of a call's cost is the
// round trip.
const parallelCalls = 4

// domainJob is one domain of a per-domain collection.
type domainJob struct {
	dom  golibvirt.Domain
	meta *domainMeta // nil: nothing to report
	now  time.Time
	st   domStats
	err  error
}

// collectPerDomain lists the active domains and reads each one's
// statistics with one call per kind and device, parallelCalls domains at a
// time; it emits them in the order listed.
func (d *Driver) collectPerDomain(lv *golibvirt.Libvirt, out []meter.Measurement) ([]meter.Measurement, []error, error) {
	doms, _, err := lv.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive)
	if err != nil {
		err = fmt.Errorf("libvirt: list domains: %w", err)
		if !isServerError(err) {
			err = &connError{err}
		}
		return out, nil, err
	}
	if cap(d.jobs) < len(doms) {
		d.jobs = append(d.jobs[:cap(d.jobs)], make([]domainJob, len(doms)-cap(d.jobs))...)
	}
	jobs := d.jobs[:len(doms)]
	for i := range jobs {
		j := &jobs[i]
		j.dom, j.meta, j.err = doms[i], nil, nil
		j.st.reset()
	}
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(jobs) {
				return
			}
			d.fetchDomain(lv, &jobs[i])
		}
	}
	var wg sync.WaitGroup
	for range min(parallelCalls, len(jobs)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()

	var errs []error
	for i := range jobs {
		j := &jobs[i]
		if j.err != nil {
			var ce *connError
			if errors.As(j.err, &ce) {
				return out, errs, j.err
			}
			errs = append(errs, j.err)
		}
		if j.meta != nil {
			out = appendDomain(out, j.now, j.meta, &j.st)
		}
	}
	return out, errs, nil
}

// fetchDomain reads one domain with the per-domain calls into j. A domain
// that stopped running since it was listed is skipped without error.
func (d *Driver) fetchDomain(lv *golibvirt.Libvirt, j *domainJob) {
	s, dom := &j.st, j.dom
	state, maxMem, _, nrVirtCPU, cpuTime, err := lv.DomainGetInfo(dom)
	if err != nil {
		if !isNotRunning(err) {
			j.err = rpcError("get the info", dom, err)
		}
		return
	}
	s.state = int32(state)
	if !isMetered(s.state) {
		return
	}
	j.now = time.Now()
	meta, err := d.meta(lv, dom, j.now)
	if err != nil {
		if !isNotRunning(err) {
			j.err = err
		}
		return
	}
	s.cpuTime, s.haveCPU, s.vcpus, s.maxMemKiB, s.haveMax = cpuTime, true, uint32(nrVirtCPU), maxMem, true

	// A domain without a balloon device has no memory stats: not an error.
	mem, err := lv.DomainMemoryStats(dom, uint32(golibvirt.DomainMemoryStatNr), 0)
	if err != nil && !isServerError(err) {
		j.err = rpcError("read memory stats", dom, err)
		return
	}
	for _, st := range mem {
		switch golibvirt.DomainMemoryStatTags(st.Tag) {
		case golibvirt.DomainMemoryStatAvailable:
			s.availKiB, s.haveAvail = st.Val, true
		case golibvirt.DomainMemoryStatUnused:
			s.unusedKiB, s.haveUnused = st.Val, true
		case golibvirt.DomainMemoryStatRss:
			s.rssKiB, s.haveRSS = st.Val, true
		}
	}

	var errs []error
	for i := range meta.disks {
		name := meta.disks[i].name
		rdReq, rdBytes, wrReq, wrBytes, _, err := lv.DomainBlockStats(dom, name)
		if err != nil {
			if isNotRunning(err) {
				return // shut off meanwhile: nothing of it
			}
			if err = rpcError("read block stats of "+name, dom, err); !isServerError(err) {
				j.err = err
				return
			}
			errs = append(errs, err)
			continue
		}
		// libvirt reports -1 for a counter the hypervisor does not keep.
		s.disks = append(s.disks, blockStat{name: name, rdReq: rdReq, rdBytes: rdBytes, wrReq: wrReq, wrBytes: wrBytes,
			haveRdReq: rdReq >= 0, haveRdB: rdBytes >= 0, haveWrReq: wrReq >= 0, haveWrB: wrBytes >= 0})
	}
	for i := range meta.nics {
		name := meta.nics[i].name
		rxB, rxP, rxE, rxD, txB, txP, txE, txD, err := lv.DomainInterfaceStats(dom, name)
		if err != nil {
			if isNotRunning(err) {
				return
			}
			if err = rpcError("read interface stats of "+name, dom, err); !isServerError(err) {
				j.err = err
				return
			}
			errs = append(errs, err)
			continue
		}
		s.nics = append(s.nics, ifStat{name: name, rxBytes: rxB, rxPackets: rxP, rxErrs: rxE, rxDrop: rxD,
			txBytes: txB, txPackets: txP, txErrs: txE, txDrop: txD})
	}
	j.meta, j.err = meta, errors.Join(errs...)
}
