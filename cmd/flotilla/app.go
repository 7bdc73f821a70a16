package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// run is the whole program: it runs the command line in args and returns
// the process exit status (0, or 1 for any error with the message on
// stderr). It installs no signal handlers itself; the server and sub
// commands do.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runApp(ctx, newApp(os.Stdin, stdout, stderr), args)
}

// runApp runs app and turns its error into an exit status.
func runApp(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return 0
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(app.ErrWriter, "flotilla: %s\n", msg)
	}
	return code
}

// newApp builds the command line. Each call returns fresh commands and flag
// values, so that several runs (tests) never share parse state.
//
// urfave/cli v2 appends its package-level HelpFlag, VersionFlag and help
// command to every App and mutates them while parsing, which is a data
// race as soon as two Apps run at once (urfave/cli#1242, #1699), as they do
// in this package's parallel tests. So the built-in ones are hidden and
// each App gets its own --help, --version and help command instead; they
// behave the same.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{
		serverCommand(),
		pubCommand(),
		subCommand(),
		reqCommand(),
		healthcheckCommand(),
		clusterCommand(),
		versionCommand(),
		helpCommand(),
	}
	var ownHelp func(cmds []*cli.Command)
	ownHelp = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd.HideHelp = true
			cmd.HideHelpCommand = true
			cmd.Flags = append(cmd.Flags, helpFlag())
			cmd.OnUsageError = usageError
			ownHelp(cmd.Subcommands)
		}
	}
	ownHelp(commands)
	return &cli.App{
		Name:  "flotilla",
		Usage: "a clustered, Raft-replicated message broker that speaks the NATS client protocol",
		Description: `Start a node with "flotilla server" (see "flotilla server --help" for every
flag, env var and config key). pub, sub and req are small nats.go clients that
work against Flotilla or any NATS server.`,
		Commands: commands,
		Flags: []cli.Flag{
			helpFlag(),
			&cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version"},
		},
		Action: func(c *cli.Context) error {
			switch {
			case c.Bool("version"):
				_, err := fmt.Fprintln(c.App.Writer, versionString())
				return err
			case c.Args().Present():
				return fmt.Errorf("unknown command %q (see flotilla --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		HideHelp:        true,
		HideHelpCommand: true,
		HideVersion:     true,
		Reader:          stdin,
		Writer:          stdout,
		// Errors are printed once, by runApp.
		ErrWriter:      stderr,
		OnUsageError:   usageError,
		ExitErrHandler: func(*cli.Context, error) {}, // never os.Exit from inside the app
		Suggest:        true,
	}
}

func helpFlag() cli.Flag {
	return &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
}

func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the commands, or one command's flags",
		ArgsUsage: "[COMMAND]",
		Action: func(c *cli.Context) error {
			if name := c.Args().First(); name != "" {
				if c.App.Command(name) == nil {
					return fmt.Errorf("unknown command %q (see flotilla --help)", name)
				}
				return cli.ShowCommandHelp(c, name)
			}
			return cli.ShowAppHelp(c)
		},
	}
}

// usageError replaces urfave/cli's "Incorrect Usage" plus full help dump
// with a one-line error and a pointer to --help.
func usageError(c *cli.Context, err error, _ bool) error {
	name := c.App.Name
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return fmt.Errorf("%w (see %s --help)", err, name)
}
