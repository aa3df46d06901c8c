// Package load is the engine of cmd/smtpload, the benchmark's load tool:
// a generator that sends N messages of a given size over C concurrent SMTP
// sessions (plain, STARTTLS or implicit TLS, with or without AUTH, M
// messages per session) and measures each message's latency from the end
// of DATA to the server's reply; and a sink that accepts and counts mail,
// optionally offering STARTTLS and fsyncing each message to disk before
// its 250, as a durable next hop would.
//
// It owns only its own connections, and, in the sink, the files it
// creates (and removes again) in [SinkOptions.Dir]. It imports no other
// part of smarthost but config's TLS mode names, and it must not: it
// measures smarthost from the outside, exactly as it measures Postfix.
//
// Both sides speak SMTP themselves (net/textproto, no go-smtp) so that the
// tool adds as little CPU of its own as possible to the machine it
// measures. The generator does not pipeline, as Postfix's smtp-source
// does not; the sink accepts pipelined commands.
//
// Invariants: a message counts as sent only when the server answered its
// DATA with 2xx; a latency is recorded for every such message; the sink
// answers 250 only after the message's bytes are in (and, with Fsync,
// fsynced to) its file.
package load
