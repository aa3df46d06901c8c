package dkim

import "strings"

// testMessage is one message of the sign-then-verify corpus.
type testMessage struct {
	name string
	msg  string
}

// lines joins lines with CRLF, each line ending in one.
func lines(ls ...string) string { return strings.Join(ls, "\r\n") + "\r\n" }

// corpus is what every signing test signs: the shapes of real mail that
// have broken DKIM signers before.
func corpus() []testMessage {
	long := strings.Repeat("0123456789", 250) // 2500 octets, over RFC 5322's 998
	return []testMessage{
		{"plain", lines(
			"From: Alice <alice@example.test>",
			"To: bob@example.invalid",
			"Subject: hello",
			"Date: Mon, 21 Sep 2026 10:00:00 +0000",
			"Message-ID: <1@example.test>",
			"",
			"Hello Bob.",
		)},
		{"folded headers", lines(
			"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?=",
			"  <joerg@example.test>",
			"To: a@example.invalid,",
			"\tb@example.invalid,   c@example.invalid",
			"Cc: d@example.invalid",
			"Subject: a subject that goes on",
			"  and on\t and on   ",
			"Date: Mon, 21 Sep 2026 10:00:00 +0000",
			"X-Unsigned:   kept as is",
			"",
			"Body.",
		)},
		{"8-bit UTF-8 body", lines(
			"From: alice@example.test",
			"To: bob@example.invalid",
			"Subject: =?utf-8?b?R3LDvMOfZQ==?=",
			"MIME-Version: 1.0",
			"Content-Type: text/plain; charset=utf-8",
			"Content-Transfer-Encoding: 8bit",
			"",
			"Grüße aus Köln, 你好, ✓",
			"  indented  line with   runs of\tspace \t ",
			"",
			"after an empty line",
			"",
			"",
		)},
		{"missing final newline", lines(
			"From: alice@example.test",
			"To: bob@example.invalid",
			"Subject: no newline",
			"",
			"first line",
		) + "last line, no CRLF  "},
		{"long lines", lines(
			"From: alice@example.test",
			"To: bob@example.invalid",
			"Subject: long lines",
			"",
			long,
			"short",
			long+" "+long,
		)},
		{"existing signature", foreignSig + lines(
			"From: alice@example.test",
			"To: bob@example.invalid",
			"Subject: resent",
			"",
			"Signed before, by someone else.",
		)},
		{"repeated and list headers", lines(
			"Received: from a by b; Mon, 21 Sep 2026 10:00:00 +0000",
			"Received: from c by d; Mon, 21 Sep 2026 10:00:00 +0000",
			"From: list@example.test",
			"To: one@example.invalid",
			"To: two@example.invalid",
			"Resent-From: alice@example.test",
			"Resent-Date: Mon, 21 Sep 2026 10:00:00 +0000",
			"List-Id: <list.example.test>",
			"List-Unsubscribe: <https://example.test/u>",
			"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
			"Subject: two To fields",
			"",
			"Body.",
		)},
		{"empty body", lines(
			"From: alice@example.test",
			"Subject: nothing",
			"",
		)},
		{"trailing empty lines", lines(
			"From: alice@example.test",
			"Subject: trailing",
			"",
			"text",
			"",
			"",
			"",
		)},
	}
}
