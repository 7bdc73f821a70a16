package main

import (
	"context"
	"os"
)

func main() {
	// Signals are handled by the commands that need them (server, sub), not
	// here, so that a second SIGTERM can still end a stuck shutdown.
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
