// Package reply is the only place that knows SMTP reply codes. Every reply
// smarthost sends is a named [Reply] here, and [FromError] is the one mapping
// from an error to the reply a client sees.
//
// It must not import any smarthost package that could import it back; it may
// recognise errors of lower packages (queue, auth, relay/dkim) by their
// sentinels.
//
// Invariants, checked by a table test: every reply has an enhanced status
// code (RFC 2034/3463) whose class matches the first digit of the code, and
// reply text is generic — it never carries file paths, configuration keys or
// the names of internal checks. Details go to the log.
package reply
