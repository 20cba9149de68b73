// Package gnocchi is a sink.Sink that posts measurements to Gnocchi, the
// time-series store of OpenStack Telemetry, as measures of metrics of
// resources, through gophercloud and github.com/gophercloud/utils/v2/gnocchi.
//
// Most programs name it by URL:
//
//	import _ "github.com/meterkit/meter/sink/gnocchi"
//	s, err := sink.Open(ctx, "gnocchi://?cloud=mycloud&archive_policy=low")
//
// # URLs
//
//	gnocchi://?PARAMS                      Keystone auth, Gnocchi from the catalogue (service type "metric")
//	gnocchi+http://HOST:8041?PARAMS        Gnocchi at a fixed address, Keystone auth
//	gnocchi+http://HOST:8041?auth=basic    Gnocchi with auth_mode = basic: no Keystone (user=, default admin)
//	gnocchi+https://...                    the same over TLS
//
// Parameters: cloud (a clouds.yaml entry; default OS_CLOUD, else the OS_*
// variables), clouds_file, password_file (the password in a file of mode
// 0600, replacing clouds.yaml's), region, interface (public, internal, admin),
// resource_type (default generic), archive_policy (default: Gnocchi's
// archive policy rules choose), resource_attrs (comma-separated label keys
// that become attributes of created resources), resource_types (default,
// or none: no built-in DefaultResourceTypes), timeout (30s), ca, auth
// (keystone or basic), user (basic only). Credentials never go in the URL.
//
// # Mapping
//
//	Gnocchi                      from the measurement
//	-------                      --------------------
//	resource id                  ResourceID; else Host; else the measurement is rejected.
//	                             Gnocchi maps ids that are not UUIDs to UUIDv5 and keeps the
//	                             original as original_resource_id. A "/" in it is rejected.
//	metric name                  Name (a "/" in it is rejected)
//	measure value, timestamp     Value; Time in UTC (Gnocchi reads zoneless times as UTC)
//	metric unit                  Unit, given when the metric is created (create_metrics=true)
//	metric archive policy        WithArchivePolicy / archive_policy=, when the metric is created
//	resource type                when created: the label gnocchi.resource_type (ResourceTypeLabel;
//	                             driver/notification's shipped definitions set it: instance,
//	                             volume, image); else the first ResourceType whose meters match
//	                             (WithResourceTypes; by default DefaultResourceTypes: instance,
//	                             instance_disk and instance_network_interface for
//	                             driver/libvirt's meters); else WithResourceType /
//	                             resource_type= (default "generic")
//	resource project_id, user_id ProjectID, UserID of the first measurement of the resource
//	resource attributes          those of the ResourceType of that name, from its labels (with
//	                             defaults; "flavor|flavor_name": the first label present);
//	                             for other types the labels named by WithResourceAttributes /
//	                             resource_attrs= ("host" falls back to Host); other labels are
//	                             not stored.
//	                             Labels prefixed "meterkit." (meter.ReservedPrefix: the level
//	                             meterkit.state the levels stage writes) are meterkit's own:
//	                             never stored, and naming one is an error
//	Kind                         not stored: Gnocchi has no counter type (aggregate cumulative
//	                             metrics with an archive policy that has rate aggregations)
//
// # Writing
//
// New does no I/O. The first Write authenticates with Keystone (AllowReauth
// set, HTTP timeout and an idle-connection timeout under the 60 s after
// which uwsgi drops idle connections), and looks Gnocchi up. Each Write is
// one POST /v1/batch/resources/metrics/measures?create_metrics=true, with
// Accept: application/json so that errors come back as JSON. When Gnocchi
// answers 400 "Unknown resources", the sink creates those resources (409,
// already created by someone else, is fine) and posts the batch again,
// once, as Ceilometer's own Gnocchi publisher does. Gnocchi answers 202:
// measures are then in its incoming storage, and metricd aggregates them
// shortly after (read with refresh=true to force it).
//
// # Failures
//
//	what happened                                Write returns
//	-------------                                -------------
//	measurement invalid, no resource id, "/"     *sink.PartialError naming them (sink.Permanent if all)
//	  in an id or name, a unit over 31 chars
//	  (Gnocchi would stall on the batch)
//	resource creation refused with a 4xx         those resources' measurements in a *sink.PartialError
//	batch answered 400 (not unknown resources),  the refused metrics' measurements in a *sink.PartialError
//	  413, 422 or another 4xx                      (sink.Permanent if all): see below
//	401                                          gophercloud fetches a new token and retries once;
//	                                             a second 401 is retryable
//	403, 404, 408, 409, 429, 5xx, no answer      retryable
//
// Gnocchi refuses a whole batch for one bad metric (a unit over 31
// characters, say) without saying which. The sink then posts each half of
// the batch, and halves again what is refused, down to single metrics, so
// that one bad metric costs about 2·log2(metrics) requests and not the
// rest of the batch; after 32 such requests, what was not tried alone is
// refused with the others. A 413 (too large) is split the same way.
//
// No password or token appears in an error: errors are scrubbed of them
// before they are returned. The sink logs nothing.
package gnocchi
