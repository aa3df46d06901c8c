package main

// TODO: replaced when the serve subcommand lands.
func runServe(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
