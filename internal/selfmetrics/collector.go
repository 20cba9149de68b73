package selfmetrics

import (
	"fmt"
	"reflect"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterkit/meter/internal/statslog"
)

// Row is one labelled instance of a Stats struct, such as one sink's.
type Row struct {
	Label string // the label's value
	Stats any    // a struct of the collector's type
}

// Collector is a prometheus.Collector reading a Stats struct, or one per
// label value, each time it is scraped.
type Collector struct {
	typ    reflect.Type
	fields []statslog.Field
	descs  []*prometheus.Desc
	read   func() []Row
}

var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`) })

// New returns a collector of the struct type of sample whose metrics are
// named prefix + key (+ "_total" for counters); read returns the current
// values, one unlabelled Row, or with label one row per label value. It
// panics on a sample that is not a struct or a key that makes no valid
// metric name: mistakes in the code, found by its first test.
func New(prefix string, sample any, label string, help func(key string) string, read func() []Row) *Collector {
	t := reflect.TypeOf(sample)
	c := &Collector{typ: t, fields: statslog.Fields(t), read: read}
	var labels []string
	if label != "" {
		labels = []string{label}
	}
	for _, f := range c.fields {
		name := prefix + f.Key
		if !f.Gauge {
			name += "_total"
		}
		if !validName().MatchString(name) {
			panic(fmt.Sprintf("selfmetrics: %s.%s gives the invalid metric name %q", t, f.Key, name))
		}
		h := f.Key
		if help != nil {
			h = help(f.Key)
		}
		c.descs = append(c.descs, prometheus.NewDesc(name, h, labels, nil))
	}
	return c
}

// Single returns a collector of one unlabelled Stats struct.
func Single(prefix string, sample any, help func(key string) string, read func() any) *Collector {
	return New(prefix, sample, "", help, func() []Row { return []Row{{Stats: read()}} })
}

// Describe sends the descriptor of every tagged field.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the stats and sends one metric per tagged field and row.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.read() {
		v := reflect.ValueOf(r.Stats)
		if v.Type() != c.typ {
			panic(fmt.Sprintf("selfmetrics: read returned a %s, want a %s", v.Type(), c.typ))
		}
		var labels []string
		if r.Label != "" {
			labels = []string{r.Label}
		}
		for i, f := range c.fields {
			vt := prometheus.CounterValue
			if f.Gauge {
				vt = prometheus.GaugeValue
			}
			ch <- prometheus.MustNewConstMetric(c.descs[i], vt, statslog.Number(v, f), labels...)
		}
	}
}

// Func returns a collector of the descriptors descs whose metrics collect
// sends, for figures that are not a tagged field.
func Func(collect func(chan<- prometheus.Metric), descs ...*prometheus.Desc) prometheus.Collector {
	return funcCollector{descs, collect}
}

type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
