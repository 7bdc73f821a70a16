package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"
)

// The client commands are deliberately plain nats.go users, so they work
// against Flotilla and against any NATS server alike.

const (
	flagServer  = "server"
	flagTimeout = "timeout"
	flagHeader  = "header"
	flagReply   = "reply"
	flagCount   = "count"
	flagQueue   = "queue"
)

// clientFlags are the connection flags every client command takes.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: flagServer, Aliases: []string{"s"}, EnvVars: []string{"FLOTILLA_SERVER"}, Value: nats.DefaultURL,
			Usage: "NATS server URL, or a comma-separated list (credentials may go in the URL: nats://user:pass@host:4222)",
		},
		&cli.DurationFlag{
			Name: flagTimeout, Value: 2 * time.Second,
			Usage: "time allowed to connect, and to flush or get a reply",
		},
	}
}

func headerFlag() cli.Flag {
	return &cli.GenericFlag{
		Name: flagHeader, Aliases: []string{"H"}, Value: &headerList{},
		Usage: "add a message header `KEY:VALUE` (repeatable)",
	}
}

// headerList is a repeatable KEY:VALUE flag. It is not a StringSliceFlag
// because that would split header values at commas.
type headerList struct{ h nats.Header }

func (l *headerList) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("header %q: want KEY:VALUE", s)
	}
	if l.h == nil {
		l.h = nats.Header{}
	}
	l.h.Add(k, strings.TrimSpace(v))
	return nil
}

func (l *headerList) String() string { return "" }

func headersFrom(c *cli.Context) nats.Header {
	if l, ok := c.Generic(flagHeader).(*headerList); ok && len(l.h) > 0 {
		return l.h
	}
	return nil
}

// connect dials --server with the command's name so it shows up in the
// server's connection list.
func connect(c *cli.Context, name string, extra ...nats.Option) (*nats.Conn, error) {
	servers := c.String(flagServer)
	opts := append([]nats.Option{
		nats.Name("flotilla " + name),
		nats.Timeout(c.Duration(flagTimeout)),
	}, extra...)
	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURLs(servers), err)
	}
	return nc, nil
}

// redactURLs hides passwords in a comma-separated URL list before it is
// printed.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// exactArgs checks the positional arguments: between min and max of them.
func exactArgs(c *cli.Context, min, max int) error {
	if n := c.NArg(); n < min || n > max {
		return fmt.Errorf("want %s, got %d argument(s) (see %s --help)", c.Command.ArgsUsage, n, c.Command.HelpName)
	}
	return nil
}

func pubCommand() *cli.Command {
	return &cli.Command{
		Name:      "pub",
		Usage:     "publish a message (DATA, or stdin when omitted)",
		ArgsUsage: "SUBJECT [DATA]",
		Flags: append(clientFlags(),
			headerFlag(),
			&cli.StringFlag{Name: flagReply, Usage: "reply `SUBJECT` to send with the message"},
			&cli.IntFlag{Name: flagCount, Value: 1, Usage: "publish the message `N` times"},
		),
		Action: runPub,
	}
}

func runPub(c *cli.Context) error {
	if err := exactArgs(c, 1, 2); err != nil {
		return err
	}
	subject := c.Args().Get(0)
	count := c.Int(flagCount)
	if count < 1 {
		return fmt.Errorf("--%s must be at least 1", flagCount)
	}
	var data []byte
	if c.NArg() == 2 {
		data = []byte(c.Args().Get(1))
	} else {
		var err error
		if data, err = io.ReadAll(c.App.Reader); err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
	nc, err := connect(c, "pub")
	if err != nil {
		return err
	}
	defer nc.Close()

	hdr := headersFrom(c)
	for range count {
		msg := &nats.Msg{Subject: subject, Reply: c.String(flagReply), Data: data, Header: hdr}
		if err := nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("publish to %q: %w", subject, err)
		}
	}
	// Flush is a PING/PONG round trip: once it returns, the server has
	// processed every PUB, and any -ERR it sent is in LastError.
	if err := nc.FlushTimeout(c.Duration(flagTimeout)); err != nil {
		return fmt.Errorf("flush to %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	if err := nc.LastError(); err != nil {
		return fmt.Errorf("publish to %q: %w", subject, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "published %d message(s) of %d bytes to %q\n", count, len(data), subject)
	return nil
}

func subCommand() *cli.Command {
	return &cli.Command{
		Name:      "sub",
		Usage:     "print messages on a subject until --count arrive or SIGINT",
		ArgsUsage: "SUBJECT",
		Description: `Each message is printed as "[#n] subject [reply]", then its headers as
"Key: value" lines and a blank line (only when it has headers), then its data
and a newline. Status lines go to stderr, so stdout carries only messages.`,
		Flags: append(clientFlags(),
			&cli.StringFlag{Name: flagQueue, Usage: "join queue group `NAME`"},
			&cli.IntFlag{Name: flagCount, Usage: "exit after `N` messages (0 = run until interrupted)"},
		),
		Action: runSub,
	}
}

func runSub(c *cli.Context) error {
	if err := exactArgs(c, 1, 1); err != nil {
		return err
	}
	subject, queue, count := c.Args().Get(0), c.String(flagQueue), c.Int(flagCount)
	if count < 0 {
		return fmt.Errorf("--%s must not be negative", flagCount)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := connect(c, "sub")
	if err != nil {
		return err
	}
	defer nc.Close()
	var sub *nats.Subscription
	if queue != "" {
		sub, err = nc.QueueSubscribeSync(subject, queue)
	} else {
		sub, err = nc.SubscribeSync(subject)
	}
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", subject, err)
	}
	if count > 0 {
		// The server stops delivering after count, so none are lost in
		// flight when we exit.
		if err := sub.AutoUnsubscribe(count); err != nil {
			return fmt.Errorf("subscribe to %q: %w", subject, err)
		}
	}
	// Once the flush returns the server has registered the subscription:
	// anything published after the status line below is received.
	if err := nc.FlushTimeout(c.Duration(flagTimeout)); err != nil {
		return fmt.Errorf("flush to %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	if err := nc.LastError(); err != nil {
		return fmt.Errorf("subscribe to %q: %w", subject, err)
	}
	if queue != "" {
		fmt.Fprintf(c.App.ErrWriter, "subscribed to %q in queue group %q\n", subject, queue)
	} else {
		fmt.Fprintf(c.App.ErrWriter, "subscribed to %q\n", subject)
	}

	for i := 1; count == 0 || i <= count; {
		msg, err := sub.NextMsgWithContext(ctx)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: a normal way to stop
		case errors.Is(err, nats.ErrSlowConsumer):
			fmt.Fprintf(c.App.ErrWriter, "warning: messages dropped, printing could not keep up\n")
			continue
		case err != nil:
			return fmt.Errorf("receive on %q: %w", subject, err)
		}
		if err := printMsg(c.App.Writer, i, msg); err != nil {
			return err
		}
		i++
	}
	return nil
}

// printMsg writes one message in the format subCommand documents.
func printMsg(w io.Writer, n int, msg *nats.Msg) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[#%d] %s", n, msg.Subject)
	if msg.Reply != "" {
		b.WriteString(" " + msg.Reply)
	}
	b.WriteString("\n")
	writeHeaders(&b, msg.Header)
	b.Write(msg.Data)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHeaders writes "Key: value" lines in key order and a blank line,
// or nothing when there are no headers.
func writeHeaders(b *strings.Builder, h nats.Header) {
	if len(h) == 0 {
		return
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
}

func reqCommand() *cli.Command {
	return &cli.Command{
		Name:      "req",
		Usage:     "send a request and print the reply (DATA defaults to empty)",
		ArgsUsage: "SUBJECT [DATA]",
		Description: `Prints the reply's headers as "Key: value" lines and a blank line (only when
it has headers), then its data and a newline. Exits 1 when nothing is
subscribed to SUBJECT (no responders) or no reply arrives within --timeout.`,
		Flags:  append(clientFlags(), headerFlag()),
		Action: runReq,
	}
}

func runReq(c *cli.Context) error {
	if err := exactArgs(c, 1, 2); err != nil {
		return err
	}
	subject := c.Args().Get(0)
	timeout := c.Duration(flagTimeout)
	nc, err := connect(c, "req")
	if err != nil {
		return err
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: []byte(c.Args().Get(1)), Header: headersFrom(c)}
	resp, err := nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no responders on %q: nothing is subscribed to it", subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("request on %q: no reply within %s", subject, timeout)
	case err != nil:
		return fmt.Errorf("request on %q: %w", subject, err)
	}
	var b strings.Builder
	writeHeaders(&b, resp.Header)
	b.Write(resp.Data)
	b.WriteString("\n")
	_, err = io.WriteString(c.App.Writer, b.String())
	return err
}
