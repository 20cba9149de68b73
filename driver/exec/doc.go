// Package exec provides the "exec" driver: it runs a program on every
// collection and reads the measurements the program prints, either as JSON
// lines or as a Nagios plugin's output. Import it for its side effect:
//
//	import _ "github.com/meterkit/meter/driver/exec"
//
// # Configuration
//
// The driver decodes Config with driver.Config.Decode; unknown fields are
// an error, and the factory checks that the program exists and is
// executable.
//
//	argv         program and arguments, run without a shell; argv[0] is
//	             looked up in $PATH unless it contains a slash (required)
//	env          object of variables added to the agent's environment
//	clear_env    true: the program gets only env
//	dir          working directory (default: the agent's)
//	format       "json" (default) or "nagios"
//	prefix       prepended to every name with a dot; for "nagios" it
//	             defaults to the base name of argv[0]
//	resource_id  resource id of the Nagios measurements, and of JSON lines
//	             that give none
//	max_output   bytes of standard output read (default 1048576)
//
// For example, a Nagios plugin:
//
//	{"argv": ["/usr/lib/nagios/plugins/check_load", "-w", "5,4,3", "-c", "10,8,6"],
//	 "format": "nagios", "prefix": "load", "env": {"LC_ALL": "C"}}
//
// # Running the program
//
// The program runs in a process group of its own, with the collection's ctx
// as its time limit: when ctx ends, the whole group is killed with SIGKILL,
// so children the program started die too, and Collect returns an error
// saying so. Standard output is read up to max_output bytes; a program that
// writes more is killed (with its group), the complete lines before the
// limit are parsed and the error names the limit. Standard error is kept
// only to quote its start in errors. The program is reaped before Collect
// returns; if something it started still holds its output open after it
// exited, the group is killed and Collect waits no more than a fraction of
// a second for it.
//
// # The json format
//
// Each non-blank line is one JSON object:
//
//	{"name": "queue.depth", "kind": "gauge", "unit": "", "value": 42,
//	 "time": "2026-11-21T10:00:00Z", "resource_id": "jobs", "project_id": "",
//	 "user_id": "", "host": "", "labels": {"queue": "mail"}}
//
// name and value are required. kind is gauge (the default), cumulative or
// delta; time is RFC 3339 and defaults to when the program exited; an empty
// host is filled by the agent. Unknown keys are an error. Every measurement
// must pass meter.Validate. A malformed line is skipped, and the error,
// returned with the measurements of the valid lines, names its line number
// and what is wrong (at most ten lines are described). A non-zero exit
// status is an error too, again returned with what the program printed.
//
// # The nagios format
//
// The output and exit status follow the Nagios plugin guidelines. The exit
// status gives the measurement "<prefix>.state", a gauge of 0 (ok), 1
// (warning), 2 (critical) or 3 (unknown), labelled state=ok, warning,
// critical or unknown, and output=the text of the first line. Any other
// exit status counts as unknown and is also reported as an error; a program
// killed (by a timeout or for writing too much) has no state measurement.
//
// The performance data, after the first '|' of the first line and after the
// first '|' of the following lines to the end of the output, are
// `'label'=value[UOM];[warn];[crit];[min];[max]` separated by spaces. Each
// becomes the measurement "<prefix>.<label>" with the unit normalised:
//
//	UOM                  unit  kind        value
//	(none)               -     gauge       as is
//	s, ms, us            s     gauge       in seconds
//	%                    %     gauge       as is
//	B, KB, MB, GB, TB    B     gauge       in bytes; K, M, G, T are 1024-based,
//	KiB, MiB, GiB, TiB                     as the standard plugins compute them
//	c                    -     cumulative  as is
//	anything else        UOM   gauge       as is (W, V, degC ...)
//
// warn, crit, min and max, when present, become labels of the same names,
// their numbers converted to the normalised unit (ranges keep their
// notation: "@10:20", "~:5"). A value of "U" (undetermined) is skipped. A
// malformed datum or a label given twice is skipped and named, with its line
// number, in the error.
package exec
