package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v0.1.0".
var version = "dev"

// versionString is what `flotilla version` and `flotilla --version` print.
func versionString() string {
	return fmt.Sprintf("flotilla %s %s %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version and the Go version it was built with",
		Action: func(c *cli.Context) error {
			_, err := io.WriteString(c.App.Writer, versionString()+"\n")
			return err
		},
	}
}
