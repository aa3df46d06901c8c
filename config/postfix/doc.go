// Package postfix translates an existing Postfix + OpenDKIM setup into a
// smarthost configuration: the job of `smarthost import postfix`.
//
// It owns the readers of Postfix's and OpenDKIM's file formats — main.cf
// (logical lines, $name expansion, Postfix's defaults where a value depends
// on them, lists), master.cf (services and their -o overrides), the source
// files of lookup tables (the text that postmap(1) compiles into .db),
// opendkim.conf and its KeyTable and SigningTable — and the translation of
// what they say into smarthost.toml text laid out like
// systemd/smarthost.toml.
//
// It must not touch the network, run Postfix or postmap, write files, or
// read anything but the files the configuration names; it never reads the
// client-side SASL password file (smtp_sasl_password_maps), which holds
// secrets and describes a client smarthost is not.
//
// Invariants:
//
//   - Every value written is one config accepts: it is built from, or
//     checked with, config's own parsers (ParseNextHop,
//     ParseAddressPattern, ValidDomain, ParseDuration, ParseSize), so the
//     result is valid TOML with known keys whatever the input; only files
//     that do not exist on the machine that checks it, and settings Postfix
//     did not have (a host name, a certificate), can keep `smarthost check`
//     from passing.
//   - Nothing is dropped silently: a setting that is translated is preceded
//     by a "# imported from" comment naming its source; one that matters to
//     mail flow and cannot be translated becomes a "# NOT TRANSLATED"
//     comment and an entry of [Result.NotTranslated]; settings that are
//     neither translated nor known to be harmless are listed at the end.
//   - Paths written into the result are paths on the imported machine;
//     [Options.Root] only changes where they are read from.
package postfix
