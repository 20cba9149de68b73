// Package notification is a push driver, registered as "notification", that
// turns the notifications OpenStack services put on RabbitMQ (Nova, Cinder,
// Glance, through oslo.messaging) into measurements, as Ceilometer's
// notification agent does.
//
// # Queue and bindings
//
// The driver consumes from a queue of its own (meterkit-notifications by
// default, durable unless Config.Transient, with optional x-max-length and
// x-message-ttl), bound with routing key notifications.info to the control
// exchanges of Config.Exchanges (nova, cinder, glance, openstack). Its own
// queue lets it coexist with Ceilometer's agent, which consumes
// notifications.info: sharing that queue would take half of each other's
// messages. The exchanges belong to the services: they are declared
// passively, and one that does not exist yet is tried again every
// RetryInterval. Lost connections are redialled after RetryInterval.
//
// # Messages
//
// A message body is the oslo.messaging v2 envelope
// {"oslo.version": "2.0", "oslo.message": "<JSON>"} or a legacy unversioned
// notification; either way the notification has event_type, message_id,
// timestamp (oslo writes it without a zone: it is read as UTC) and payload.
//
// # Meter definitions
//
// Definitions are YAML modelled on Ceilometer's meters.yaml: each names a
// meter, the event types it applies to (glob patterns, '!' to exclude), its
// kind and unit, and RFC 9535 JSONPath queries (github.com/theory/jsonpath)
// over the notification for the volume (or a constant), resource_id,
// project_id, user_id, host, timestamp and labels, and constant_labels
// whose values are fixed strings. The shipped set (DefaultDefinitions) has
// instance, memory, vcpus and disk.root.size from compute.instance.* (but
// create.start and update), volume.size from Cinder's volume events and
// image.size from image.upload, .update and .delete. Every measurement
// carries the labels message_id and event_type.
//
// # Gnocchi
//
// The shipped definitions set the constant label gnocchi.resource_type, so
// that the Gnocchi sink creates resources of Ceilometer's types: instance
// for the four Nova meters (attributes display_name, flavor_id,
// flavor_name, image_ref from the payload, host from Host), volume for
// volume.size (display_name, volume_type), image for image.size (name,
// container_format, disk_format); see gnocchi.DefaultResourceTypes. The
// types must exist, as ceilometer-upgrade creates them. Other sinks keep
// the label as any other (a Riemann attribute, Ceilometer
// resource_metadata).
// A matching definition whose volume or resource id is missing in the
// notification makes no measurement (counted as Incomplete, logged).
//
// # Acknowledgement
//
// The driver is a driver.Pusher. The measurements of one notification are
// delivered together, and the message is acknowledged to the broker only
// when the agent's ack says they are durable; when it says they were not,
// the message goes back to the queue after RetryInterval. Until then it stays unacknowledged
// (Config.Prefetch bounds how many), and a connection lost or an agent killed
// meanwhile makes the broker redeliver it: delivery is at least once. A
// message that is not a notification is counted, logged with its event type
// and message id where it has them, and rejected without requeue; one no
// definition matches is acknowledged and counted; neither blocks the queue.
// Each delivery carries the notification's message_id as its key
// (driver.Delivery.Key): the agent's spool keeps the keys of recent
// deliveries in the transaction that commits their measurements, so a
// message redelivered after the agent was killed between committing and
// acking is recognised and acknowledged without being stored again
// (agent Stats.PushDuplicates). The driver also remembers the last RecentIDs
// ids made durable, for a redelivery within one run (an ack lost with the
// connection; Stats.Duplicates). A message that arrives again while its
// first delivery is still in the agent's current batch (not yet committed)
// is not recognised. Two agents consuming one queue share its messages and
// a redelivery may go to the other, whose spool does not know it: duplicates
// are possible across agents.
//
// The agent must run the driver with a spool: the message is acknowledged
// once its measurements are committed there, and the driver says so
// (driver.SpoolRequirer), so that the agent refuses to run it without one.
// Batches holding its measurements are never dropped to make room; when the
// spool is full of them, the driver waits (the broker keeps the messages).
//
// # Counters
//
// Stats counts messages consumed, acknowledged, rejected (malformed),
// unmatched (no definition), redelivered by the broker and recognised as
// already durable (Duplicates; the agent counts those its spool
// recognised, PushDuplicates), among others; Push logs them every
// Config.StatsEvery and when it returns.
package notification
