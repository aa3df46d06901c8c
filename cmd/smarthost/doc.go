// Command smarthost is the SMTP signing relay. This package only parses
// flags and calls into relay/, queue/, auth/ and config/; it holds no mail
// logic of its own. Each subcommand lives in its own file.
package main
