// Package agentconfig reads the reference agent's YAML configuration file
// and builds what it names through the registries: drivers with
// driver.Open, stages with stage.Open. It imports no backend: the program
// imports the driver and stage packages it wants registered, and wires the
// transport itself.
//
//	publishers:
//	  connect: [tcp://10.0.0.5:7711, tcp://10.0.0.6:7711]
//	  tenant: acme
//	  key_file: /etc/meterkit/acme.key
//	spool: /var/lib/meterkit/agent
//	interval: 10s
//	drivers:
//	  - type: cpu
//	  - name: core-switch
//	    type: snmp
//	    interval: 30s
//	    timeout: 10s
//	    settings: {target: 10.0.0.1, community: public}
//	stages:
//	  - type: select
//	    meters: ["cpu.*", "if.*"]
//
// The file is decoded strictly: an unknown key, a misspelt driver or stage
// type, a value of the wrong type or a bad duration is an error
// FILE:LINE: KEY: message, also inside a driver's or stage's own settings.
// A file whose top-level keys are all registered driver names is the older
// per-driver settings map ({"filesystem": {...}}); Load reads it as that and
// sets Config.Deprecated.
//
// A relative path in the file (key_file, tls files, spool, stages_file) is
// relative to the file's directory.
//
// Flags given on a command line replace the file's values (see
// Config.Override); lists replace, they do not merge.
//
// A running agent takes a file read again (SIGHUP) through Config.Reload:
// the instances whose type, settings and secret files (the contents of the
// *_file settings) did not change are kept, the others opened anew; keys
// that need a restart make it refuse. self_metrics: adds an instance,
// SelfMetrics, that sends the agent's own counters as meterkit.agent.*
// measurements.
package agentconfig
