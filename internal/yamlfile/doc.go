// Package yamlfile decodes the reference binaries' YAML configuration files
// strictly, keeping each node's line, so that every error reads
// FILE:LINE: KEY: message: an unknown key, a value of the wrong type, a bad
// duration, and errors of a driver's, sink's or stage's own settings, which
// reach their factory as a meter.Config (JSON) and are mapped back to the
// setting's line.
package yamlfile
