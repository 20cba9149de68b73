// Package prometheus provides the "prometheus" driver: it scrapes an
// endpoint that exposes metrics in the Prometheus exposition format and
// turns every sample into a measurement. Import it for its side effect:
//
//	import _ "github.com/meterkit/meter/driver/prometheus"
//
// # Configuration
//
// The driver decodes Config with driver.Config.Decode; unknown fields are
// an error.
//
//	url             http or https URL of the endpoint (required)
//	timeout         time limit of one scrape, like "5s" (default "10s"); the
//	                collection's ctx deadline applies too, whichever is first
//	headers         object of request headers, e.g. a bearer token; their
//	                values never appear in errors
//	bearer_token_file  a file holding a bearer token, sent as Authorization
//	basic_auth      {"username": …, "password_file": …}: basic auth with the
//	                password in a file; both files are read when the driver is
//	                made and refused unless only their owner may read them
//	                (0600), as tenant key files are
//	prefix          prepended to every name with a dot
//	allow           if set, only metric families whose name matches one of
//	                these patterns (path.Match: *, ?, [a-z]) are kept
//	deny            families matching one of these are dropped (wins over allow)
//	resource_id     resource id of every measurement
//	resource_label  a label whose value becomes the resource id instead of
//	                a label (resource_id where it is missing)
//	max_body        bytes of response read at most (default 16 MiB)
//	tls             for an https url: {"ca_file": CAs to trust (the system's
//	                otherwise), "cert_file" and "key_file": a client
//	                certificate and its key (both or neither), "server_name":
//	                the name to verify when it differs from the url's host};
//	                the files are PEM and read when the driver is made
//
// For example:
//
//	{"url": "http://127.0.0.1:9100/metrics", "timeout": "5s", "prefix": "node",
//	 "allow": ["node_cpu_*", "node_memory_*"], "resource_label": "cpu",
//	 "headers": {"Authorization": "Bearer 0123abcd"}}
//
// # Scraping
//
// The request asks for the protobuf format first and the text format
// second (content negotiation, as Prometheus does); a response whose
// Content-Type names neither is read as text. Connections are kept open
// between collections; the driver is an io.Closer that closes them. A
// status other than 200, a response that does not parse or one over
// max_body is an error. With the protobuf format the families decoded
// before a parse error are still returned; the text format is all or
// nothing.
//
// # Mapping
//
// Each sample becomes one measurement named after its series (with the
// prefix). The metric's labels become the measurement's labels (sorted by
// key; labels with an empty value are left out, as Prometheus treats them
// as absent). Time is the sample's timestamp if it has one, otherwise the
// time the response arrived.
//
//	type        series                       kind        extra label
//	counter     name                         cumulative  -
//	gauge       name                         gauge       -
//	untyped     name                         gauge       -
//	summary     name (one per quantile)      gauge       quantile
//	            name_sum, name_count         cumulative  -
//	histogram   name_bucket (one per bound,  cumulative  le ("+Inf" for the last)
//	            +Inf included)
//	            name_sum, name_count         cumulative  -
//
// A gauge histogram maps like a histogram but to gauges. Native histograms
// contribute only their _sum and _count.
//
// The unit comes from the family's declared unit (OpenMetrics) or else
// from the name's suffix, before any _total: _seconds s, _bytes B,
// _percent %, _celsius °C, _volts V, _amperes A, _watts W, _joules J,
// _hertz Hz, _meters m, _grams g. It applies to the value series, the
// quantiles and _sum; _bucket and _count are counts, without a unit.
//
// Samples whose value is NaN or infinite are left out without an error (a
// summary without observations reports NaN quantiles). A sample with more
// than meter.MaxLabels labels (counting le or quantile), or one that fails
// meter.Validate for another reason (a label value over 1024 bytes), is
// skipped; Collect then returns the other measurements with an error that
// counts the skipped samples and names the first one's metric.
package prometheus
