package main

// TODO: replaced when the queue subcommand lands.
func runQueue(args []string, io stdio) error {
	return &exitError{code: 1, msg: "not implemented yet"}
}
