package main

// TODO: replaced when the check subcommand lands.
func runCheck(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
