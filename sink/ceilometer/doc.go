// Package ceilometer publishes measurements into OpenStack Telemetry
// (Ceilometer) as samples, in one of two ways:
//
//   - Notifier (the modern way, every release since Queens): telemetry.polling
//     notifications on the notification bus (RabbitMQ), exchange "ceilometer",
//     routing key "notifications.sample", where Ceilometer's notification
//     agent takes them exactly as it takes its own polling agents' samples
//     and runs them through its pipelines (Gnocchi, Prometheus, files...).
//   - V2, for clouds older than Queens: POST /v2/meters/{name} on the legacy
//     REST API, found in the Keystone catalogue as service type "metering".
//
// Most programs name the sink by URL:
//
//	import _ "github.com/meterkit/meter/sink/ceilometer"
//	s, err := sink.Open(ctx, "ceilometer+amqp://guest:guest@rabbit:5672/?batch=100&secret_env=TELEMETRY_SECRET")
//	s, err := sink.Open(ctx, "ceilometer://?cloud=mycloud")
//
// In Go, NewNotifier takes NotifierOptions and NewV2 takes V2Options, so
// that an option of the other sink does not compile; WithSource, WithTimeout
// and WithTLS are Options, which both take.
//
// # URLs
//
//	ceilometer+amqp://USER:PASS@HOST:5672/VHOST?PARAMS    notification sink
//	ceilometer+amqps://USER:PASS@HOST:5671/VHOST?PARAMS   the same over TLS
//	ceilometer://?PARAMS                                  v2 API, endpoint from the catalogue
//	ceilometer+http://HOST:8777?PARAMS                    v2 API at a fixed address (token still from Keystone)
//	ceilometer+https://HOST:8777?PARAMS                   the same over TLS
//
// Notification sink parameters: exchange (default ceilometer), durable
// (default false, as Ceilometer declares the exchange; the two must agree),
// routing_key (notifications.sample), publisher_id (meterkit), batch
// (samples per notification, default 100), secret_env (the name of an
// environment variable holding Ceilometer's telemetry_secret: samples are
// then signed), source (openstack), timeout (30s), dial_timeout (10s); with
// amqps also ca, cert, key, server_name. The vhost is the URL path ("/" when
// empty).
//
// v2 parameters: cloud (a clouds.yaml entry; default OS_CLOUD, else the OS_*
// variables), clouds_file, password_file (the password in a file of mode
// 0600, replacing clouds.yaml's), region, interface (public, internal,
// admin), source, timeout, ca. Credentials never go in the URL.
//
// # Mapping
//
// Each measurement becomes one sample:
//
//	sample key          from the measurement
//	----------          --------------------
//	counter_name        Name
//	counter_type        Kind: "gauge", "cumulative" or "delta" (Ceilometer's own words)
//	counter_unit        Unit, as is ("" when dimensionless)
//	counter_volume      Value, written as Python writes a float (42.0, 1e+16)
//	resource_id         ResourceID; else Host; else the measurement is rejected
//	project_id          ProjectID; null when empty (v2: left out, the API takes the token's)
//	user_id             UserID; null when empty (v2: left out)
//	timestamp           Time in UTC, ISO 8601 with microseconds: 2024-05-01T12:00:00.250000+00:00
//	resource_metadata   Labels as an object of strings, plus "host": Host unless a label is named host;
//	                    labels prefixed "meterkit." (meter.ReservedPrefix: the level the levels
//	                    stage writes, meterkit.state) are meterkit's own and left out
//	source              WithSource / source= (default "openstack")
//	message_id          notification sink only (the v2 API refuses it): for a batch the publisher
//	                    names (WriteFrom), a UUID v5 of the batch and the position, the same
//	                    when the batch is written again; otherwise (Write) a random UUID
//	message_signature   with WithSecret / secret_env= only: see Sign
//
// A notification is the oslo.messaging v2 envelope
// {"oslo.version": "2.0", "oslo.message": "<JSON text>"} around
// {"message_id", "publisher_id", "event_type": "telemetry.polling",
// "priority": "SAMPLE", "payload": {"samples": [...]}, "timestamp"},
// published with content type application/json (the agent drops anything
// else) and mandatory set.
//
// # Delivery
//
// New* do no I/O. The notification sink dials on the first Write, puts the
// channel in confirm mode, declares the exchange (topic, durable as
// configured, not auto-deleted) and publishes each notification with
// mandatory set; a Write returns nil only when the broker acked every
// notification and returned none. A lost connection fails the Write in
// progress, and the next Write dials again. A broker confirm says the broker
// took the message, not that Ceilometer processed it: a queue bound and
// consumed by the agent is what makes the sample reach Ceilometer, and
// mandatory publishing turns "no queue bound" into an error instead of a
// silent loss.
//
// The v2 sink authenticates with Keystone on the first Write (AllowReauth
// set, so a 401 fetches a new token and retries once) and posts one request
// per meter name; each must be answered 201.
//
// # Failures
//
//	what happened                                     Write returns
//	-------------                                     -------------
//	measurement invalid, or no ResourceID and no Host *sink.PartialError naming them (sink.Permanent if all)
//	broker nacked, or returned a message unroutable   *NackError, retryable
//	connection lost, dial failed, confirm timed out   retryable error; the next Write redials
//	v2: 400, 413, 422 and other 4xx                   those meters' measurements rejected: *sink.PartialError,
//	                                                  or sink.Permanent when none was accepted
//	v2: 401                                           new token, one retry; then retryable
//	v2: 403, 404, 408, 409, 429, 5xx, no answer       retryable (the whole batch is posted again)
//
// No password, token or signing secret appears in an error: errors are
// scrubbed of them before they are returned. The sinks log nothing.
package ceilometer
