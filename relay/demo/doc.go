// Package demo runs smarthost's whole job on loopback with no setup, for
// `smarthost demo`: a throw-away state directory, a self-signed
// certificate, fresh DKIM keys, a user, and two in-process receiving
// servers — one standing in for a recipient's MX on the Internet, one for
// the home server behind a relay domain. It submits a message over
// implicit TLS with AUTH, waits for delivery, verifies the delivered
// message's DKIM signatures against the public keys, then sends inbound
// mail to the mx listener and checks it reaches the home server unsigned.
//
// It uses the real packages end to end (config parsing, relay.Server,
// queue, deliverer, signer); nothing is mocked. It touches only loopback
// and a temporary directory, which it removes, and it never looks up a
// real DNS name: all delivery goes through transport entries, and DKIM
// keys are looked up in an in-memory zone.
package demo
