package libvirt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/meterkit/meter"
)

// bulkGroups are the stats groups asked of ConnectGetAllDomainStats.
const bulkGroups = golibvirt.DomainStatsState | golibvirt.DomainStatsCPUTotal | golibvirt.DomainStatsBalloon |
	golibvirt.DomainStatsVCPU | golibvirt.DomainStatsInterface | golibvirt.DomainStatsBlock

// collectBulk reads every active domain's statistics in one call. It
// returns errNoDomainStats when the daemon answered without the cpu-total
// group for a running domain (libvirt's test driver does: it implements
// only the state group).
func (d *Driver) collectBulk(lv *golibvirt.Libvirt, out []meter.Measurement) ([]meter.Measurement, []error, error) {
	recs, err := lv.ConnectGetAllDomainStats(nil, uint32(bulkGroups), uint32(golibvirt.ConnectGetAllDomainsStatsActive))
	if err != nil {
		err = fmt.Errorf("libvirt: get all domain stats: %w", err)
		if !isServerError(err) {
			return out, nil, &connError{err}
		}
		if d.bulk == 0 {
			return out, nil, errNoDomainStats // too old a daemon: per domain
		}
		return out, nil, err
	}
	var errs []error
	s := &d.stats
	for i := range recs {
		r := &recs[i]
		s.reset()
		parseRecord(r.Params, s)
		if !isMetered(s.state) {
			continue
		}
		if !s.haveCPU && s.state == int32(golibvirt.DomainRunning) && d.bulk == 0 {
			return out, errs, errNoDomainStats
		}
		now := time.Now()
		meta, err := d.meta(lv, r.Dom, now)
		if err != nil {
			var ce *connError
			if errors.As(err, &ce) {
				return out, errs, err
			}
			if !isNotRunning(err) {
				errs = append(errs, err)
			}
			continue
		}
		out = appendDomain(out, now, meta, s)
	}
	return out, errs, nil
}

// parseRecord fills s from one domain's typed parameters, as libvirt names
// them ("cpu.time", "balloon.rss", "block.0.name", "net.1.rx.bytes", ...;
// memory in KiB, times in ns).
func parseRecord(params []golibvirt.TypedParam, s *domStats) {
	for _, p := range params {
		f := p.Field
		v, ok := paramUint(p.Value)
		switch {
		case f == "state.state":
			if ok {
				s.state = int32(v)
			}
		case f == "cpu.time":
			s.cpuTime, s.haveCPU = v, ok
		case f == "vcpu.current":
			if ok {
				s.vcpus = uint32(v)
			}
		case f == "balloon.maximum":
			s.maxMemKiB, s.haveMax = v, ok
		case f == "balloon.available":
			s.availKiB, s.haveAvail = v, ok
		case f == "balloon.unused":
			s.unusedKiB, s.haveUnused = v, ok
		case f == "balloon.rss":
			s.rssKiB, s.haveRSS = v, ok
		case strings.HasPrefix(f, "block."):
			i, rest, ok2 := index(f[len("block."):])
			if !ok2 {
				continue
			}
			for len(s.disks) <= i {
				s.disks = append(s.disks, blockStat{rdReq: -1, rdBytes: -1, wrReq: -1, wrBytes: -1})
			}
			b := &s.disks[i]
			switch rest {
			case "name":
				b.name, _ = p.Value.I.(string)
			case "rd.reqs":
				b.rdReq, b.haveRdReq = int64(v), ok
			case "rd.bytes":
				b.rdBytes, b.haveRdB = int64(v), ok
			case "wr.reqs":
				b.wrReq, b.haveWrReq = int64(v), ok
			case "wr.bytes":
				b.wrBytes, b.haveWrB = int64(v), ok
			}
		case strings.HasPrefix(f, "net."):
			i, rest, ok2 := index(f[len("net."):])
			if !ok2 {
				continue
			}
			for len(s.nics) <= i {
				s.nics = append(s.nics, ifStat{rxBytes: -1, rxPackets: -1, rxErrs: -1, rxDrop: -1,
					txBytes: -1, txPackets: -1, txErrs: -1, txDrop: -1})
			}
			n := &s.nics[i]
			iv := int64(v)
			if !ok {
				iv = -1
			}
			switch rest {
			case "name":
				n.name, _ = p.Value.I.(string)
			case "rx.bytes":
				n.rxBytes = iv
			case "rx.pkts":
				n.rxPackets = iv
			case "rx.errs":
				n.rxErrs = iv
			case "rx.drop":
				n.rxDrop = iv
			case "tx.bytes":
				n.txBytes = iv
			case "tx.pkts":
				n.txPackets = iv
			case "tx.errs":
				n.txErrs = iv
			case "tx.drop":
				n.txDrop = iv
			}
		}
	}
	// Devices without a name (a record cut short) cannot be matched.
	s.disks = compact(s.disks, func(b blockStat) bool { return b.name != "" })
	s.nics = compact(s.nics, func(n ifStat) bool { return n.name != "" })
}

// maxDevices bounds the device index taken from a field name.
const maxDevices = 1024

// index splits "3.rd.bytes" into 3 and "rd.bytes".
func index(f string) (int, string, bool) {
	dot := strings.IndexByte(f, '.')
	if dot <= 0 {
		return 0, "", false
	}
	i, err := strconv.Atoi(f[:dot])
	if err != nil || i < 0 || i >= maxDevices {
		return 0, "", false
	}
	return i, f[dot+1:], true
}

// paramUint returns a numeric typed parameter as a uint64.
func paramUint(v golibvirt.TypedParamValue) (uint64, bool) {
	switch x := v.I.(type) {
	case int32:
		return uint64(x), x >= 0
	case uint32:
		return uint64(x), true
	case int64:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case float64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func compact[T any](xs []T, keep func(T) bool) []T {
	n := 0
	for _, x := range xs {
		if keep(x) {
			xs[n] = x
			n++
		}
	}
	return xs[:n]
}
