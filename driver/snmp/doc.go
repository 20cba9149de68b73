// Package snmp provides the "snmp" driver: it polls OIDs of an SNMP agent
// (a PDU, a switch, a UPS, a host's snmpd) with github.com/gosnmp/gosnmp,
// the way the OpenStack Watcher PDU driver read energy counters. Import it
// for its side effect:
//
//	import _ "github.com/meterkit/meter/driver/snmp"
//
// # Configuration
//
// The driver decodes Config with driver.Config.Decode; unknown fields are
// an error.
//
//	target           host or host:port of the agent (port 161 by default; required)
//	version          "1", "2c" (default) or "3"
//	community        v1/v2c community (default "public")
//	user             v3 user; the security level follows from the passwords:
//	auth_password    both set authPriv, auth only authNoPriv, none noAuthNoPriv
//	priv_password    (at least 8 characters each)
//	auth_protocol    MD5, SHA (default), SHA224, SHA256, SHA384, SHA512
//	priv_protocol    DES, AES (default), AES192, AES256, AES192C, AES256C
//	context_name     v3 context
//	community_file, auth_password_file, priv_password_file
//	                 files holding the community or a password (one line),
//	                 instead of the value: the secret stays out of the config
//	                 file; refused unless only the owner may read it (0600)
//	timeout          time limit of one request (default "2s")
//	retries          retries of a request (default 1)
//	max_repetitions  GETBULK size of walks (default 10)
//	prefix           prepended to every name with a dot
//	resource_id      resource id of objects that set none (default: the
//	                 target's host)
//	objects          what to read (at least one):
//	  oid            numeric OID, "1.3.6.1.2.1.1.3.0" (MIB names are not supported)
//	  name           measurement name (after the prefix; required)
//	  unit           unit of the value after scale
//	  kind           gauge or counter (cumulative); default from the SNMP type
//	  scale          factor applied to the value (default 1): 0.01 turns
//	                 TimeTicks into seconds, 0.1 a PDU's deci-watt-hours into Wh
//	  mode           for counters: "" (the value, cumulative), "delta" (the
//	                 increase since the last collection, kind delta) or
//	                 "rate" (the increase per second, a gauge in unit/s)
//	  resource_id    resource id of this object (for a walk: the prefix)
//	  walk           true: oid is a table column, read every row
//	  name_oid       with walk: the column naming the rows (ifDescr)
//
// For example, a PDU's outlet energy and a host's interfaces:
//
//	{"target": "pdu1.example.net", "community": "metering", "prefix": "pdu",
//	 "objects": [
//	   {"oid": "1.3.6.1.4.1.318.1.1.26.9.4.3.1.11", "name": "outlet.energy",
//	    "unit": "Wh", "scale": 100, "walk": true, "mode": "delta"},
//	   {"oid": "1.3.6.1.2.1.1.3.0", "name": "uptime", "unit": "s", "scale": 0.01},
//	   {"oid": "1.3.6.1.2.1.31.1.1.1.6", "name": "if.in", "unit": "B", "walk": true,
//	    "name_oid": "1.3.6.1.2.1.2.2.1.2", "mode": "rate"}]}
//
// # Mapping
//
//	SNMP type                                kind (unless configured)  value
//	Counter32, Counter64                     cumulative                as read × scale
//	Gauge32, Integer, TimeTicks, Uinteger32  gauge                     as read × scale
//	Opaque float and double                  gauge                     as read × scale
//	OctetString holding a number ("230.5")   gauge                     parsed × scale
//
// Anything else (a string that is no number, an address, noSuchObject,
// noSuchInstance) is an error naming the OID; the other objects are still
// returned. A scalar object's resource id is its resource_id, else the
// driver's. A walked row's is "<resource_id>/<row>", where row is the value
// of name_oid at the row's index (or the index itself), and the row carries
// the label index=<index> (e.g. "127.0.0.1/lo", index 1).
//
// # Delta and rate: counter wrap
//
// In "delta" and "rate" modes the first collection only records a baseline
// (it emits nothing for the object); each later one emits the increase
// since the previous collection of the same series. The agent's sysUpTime
// is read with the objects to tell a restart from a wrap. The rule:
//
//   - sysUpTime went down (the agent restarted) or the counter's type
//     changed: the counter started again from zero; the increase is its
//     value.
//   - The counter did not go down: the increase is the difference.
//   - A Counter32 went down: it wrapped at 2^32, once. Every decrease of a
//     32-bit counter is smaller than a wrap, so it counts as a wrap, not a
//     reset: the increase is value + 2^32 - previous.
//   - A Counter64 went down: it was reset (a 64-bit counter does not wrap
//     in practice); the increase is its value.
//
// Poll a Counter32 more often than it can wrap (a 1 Gbit/s ifInOctets
// wraps in 34 s), or use its 64-bit twin (ifHCInOctets). A counter cleared
// by hand without an agent restart looks like a wrap; sysUpTime itself
// wraps after 497 days, which looks like a restart once.
//
// # Connections and ctx
//
// Each collection opens its UDP socket and closes it before returning, so
// the driver holds nothing between collections (and is not an io.Closer);
// a v3 collection discovers the agent's engine first (one more round
// trip). Requests end at the collection ctx's deadline or cancellation,
// whichever comes before timeout × (retries+1).
package snmp
