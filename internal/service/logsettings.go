package service

// LogSettings are a reference binary's log settings: log: {level, format}
// in its file, -log-level and -log-format on its command line. The config
// packages' Log types convert to it and back.
type LogSettings struct {
	Level  string // debug, info (the default), warn or error
	Format string // text (the default) or json
}

// Over returns l with the values o gives.
func (l LogSettings) Over(o LogSettings) LogSettings {
	if o.Level != "" {
		l.Level = o.Level
	}
	if o.Format != "" {
		l.Format = o.Format
	}
	return l
}

// Check returns the errors of l, each made by at from its key (log.level,
// log.format).
func (l LogSettings) Check(at func(key string, err error) error) []error {
	var errs []error
	if _, err := ParseLevel(l.Level); err != nil {
		errs = append(errs, at("log.level", err))
	}
	if err := CheckFormat(l.Format); err != nil {
		errs = append(errs, at("log.format", err))
	}
	return errs
}
