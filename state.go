package meter

import (
	"fmt"
	"strconv"
)

// ReservedPrefix starts the label keys and meter names that meterkit itself
// writes, such as [StateLabel] and [StateChange]. Labels with this prefix are
// for the parts of meterkit that read them (the Riemann sink sends the state
// as the event's state); sinks whose store has no use for them (Ceilometer,
// Gnocchi) drop them. Stages that transform measurements (unit, levels)
// leave meters with this prefix alone.
const ReservedPrefix = "meterkit."

// Names the levels stage (stage/levels) writes and sinks read.
const (
	// StateLabel is the label holding a measurement's level name
	// ("ok", "warning", "alert", "critical" or "stale").
	StateLabel = "meterkit.state"
	// StateChange is the name of the measurement made on each change of a
	// series' level: a Gauge without unit whose value is the new [Level],
	// with the Host, ResourceID, ProjectID, UserID and Time of the
	// measurement that changed it, and the labels [StateChangeMeter],
	// [StateChangeFrom] and [StateChangeTo].
	StateChange = "meterkit.state.change"
	// StateChangeMeter, StateChangeFrom and StateChangeTo are the label keys
	// of a StateChange measurement: the name of the meter whose level
	// changed, and the level names before and after.
	StateChangeMeter = "meter"
	StateChangeFrom  = "from"
	StateChangeTo    = "to"
)

// Level names, the values of [StateLabel] and of the StateChangeFrom and
// StateChangeTo labels.
const (
	StateOK       = "ok"
	StateWarning  = "warning"
	StateAlert    = "alert"
	StateCritical = "critical"
	StateStale    = "stale"
)

// Level is a series' state as a number, the value of a [StateChange]
// measurement: 0 ok, 1 warning, 2 alert, 3 critical, 4 stale.
type Level uint8

// The levels, in order of severity; stale (no data) comes last.
const (
	LevelOK Level = iota
	LevelWarning
	LevelAlert
	LevelCritical
	LevelStale
)

var levelNames = [...]string{StateOK, StateWarning, StateAlert, StateCritical, StateStale}

// String returns the level's name, such as "warning".
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel is the inverse of Level.String.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("meter: unknown level %q (want ok, warning, alert, critical or stale)", s)
}
