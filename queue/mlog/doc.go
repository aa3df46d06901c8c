// Package mlog is the mail log's vocabulary: the message strings of events
// and the attribute keys every package uses, so that a key means the same
// thing in every line and the whole vocabulary can be read in one place.
//
// It sits under queue/ because queue is the lowest package that logs and
// may not import relay. It holds constants only; each package that logs
// keeps its event helpers in its own events.go.
//
// One Info line per message event, always with [QueueID] ([NoQueue] before
// an ID exists, as Postfix prints NOQUEUE).
package mlog
