// Package stagestate is what the agent and the publisher share about the
// stages they run: whether two values are the same one ([Same]), the form
// a stage's state is keyed by ([Keyed]), carrying the state of the stages
// in use into their replacement in Reconfigure ([Carry]), and the stages'
// groups of the stats line ([Attrs]).
package stagestate
