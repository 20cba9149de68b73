// Package publisherconfig reads the reference publisher's YAML
// configuration file and builds what it names through the registries: sinks
// with sink.Open, stages with stage.Open. It imports no backend: the program
// imports the sink and stage packages it wants registered, and wires the
// transport and the sealing itself.
//
//	listen: tcp://0.0.0.0:7711
//	keys: /etc/meterkit/keys
//	spool: /var/lib/meterkit/publisher
//	sinks:
//	  - console://
//	  - name: riemann          # keys the sink's spool lane: editing the URL keeps it
//	    url: riemann://10.0.0.9:5555
//	stages:
//	  - type: select
//	    meters: ["cpu.*"]
//
// The file is decoded strictly: an unknown key, a misspelt sink scheme or
// stage type, a value of the wrong type or a bad duration is an error
// FILE:LINE: KEY: message, also inside a stage's own settings. Flags given
// on a command line replace the file's values (see Config.Override); lists
// replace, they do not merge. A relative path in the file (keys, tls files,
// spool, stages_file) is relative to the file's directory; a sink's URL is
// left as it is.
//
// A running publisher takes a file read again (SIGHUP) through
// Config.Reload: the sinks whose name, URL and secret files (the contents
// of the files its *_file= parameters name) did not change are kept, the
// others opened anew; keys that need a restart make it refuse.
package publisherconfig
