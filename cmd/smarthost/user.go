package main

// TODO: replaced when the user subcommand lands.
func runUser(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
