package main

// TODO: replaced when the demo subcommand lands.
func runDemo(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
