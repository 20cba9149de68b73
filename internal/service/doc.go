// Package service holds what the reference agent and publisher share as
// services and what their config packages (agent/agentconfig,
// publisher/publisherconfig) need beyond the YAML: the logger a log level
// and format make, the version a binary reports, the redaction of secrets
// for -print-config, and the reading of a secret from a file whose mode
// keeps it private.
package service
