// Package stagestate is what the agent's and the publisher's Reconfigure
// share about stage state: whether two values are the same one ([Same]),
// the form a stage's state is keyed by ([Keyed]), and carrying the state of
// the stages in use into their replacement ([Carry]).
package stagestate
