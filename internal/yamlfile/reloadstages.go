package yamlfile

import (
	"fmt"
	"strings"

	"github.com/meterkit/meter/stage"
)

// ReloadStages prepares the stages of a configuration read again: from
// those a program runs, running, opened from the stages of prevFile
// (inline prev, or those of prevStagesFile), to those of nextFile (inline
// next, or those of nextStagesFile). When the lists are the same it
// returns running and no change; else the stages of next newly opened
// (ReopenStages: those kept with their settings get their state) and a
// line saying the change. A stages file of prev that no longer reads keeps
// no stage.
func ReloadStages(running stage.Stage, prevFile *File, prev []Stage, prevStagesFile string,
	nextFile *File, next []Stage, nextStagesFile string) (st stage.Stage, change string, err error) {
	prevSpecs, _, err := StageSpecs(prevFile, prev, prevStagesFile)
	prevOK := err == nil // else the running stages' file changed since: none is kept
	nextSpecs, sf, err := StageSpecs(nextFile, next, nextStagesFile)
	switch {
	case err != nil:
		return nil, "", err
	case prevOK && SameStages(prevSpecs, nextSpecs):
		return running, "", nil
	}
	st, err = sf.ReopenStages(prevSpecs, nextSpecs)
	if err != nil {
		return nil, "", err
	}
	return st, fmt.Sprintf("stages: %s (was %s)", stageNames(nextSpecs), stageNames(prevSpecs)), nil
}

// stageNames lists the names of specs, for a change line.
func stageNames(specs []Stage) string {
	if len(specs) == 0 {
		return "none"
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}
