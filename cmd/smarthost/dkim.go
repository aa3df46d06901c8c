package main

// TODO: replaced when the dkim subcommand lands.
func runDKIM(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
