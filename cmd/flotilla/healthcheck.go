package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 if the node's /readyz answers 200, else 1 (for Docker HEALTHCHECK; images have no shell)",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name: flagHTTPAddr, EnvVars: envVars(flagHTTPAddr), Value: defaultHTTPAddr,
				Usage: "the node's http listener, host:port or http://host:port (an unspecified host such as 0.0.0.0 means this machine)",
			},
			&cli.DurationFlag{Name: flagTimeout, Value: 2 * time.Second, Usage: "time allowed for the check"},
		},
		Action: runHealthcheck,
	}
}

func runHealthcheck(c *cli.Context) error {
	url := readyzURL(c.String(flagHTTPAddr))
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Timeout: c.Duration(flagTimeout)}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s from %s: %s", resp.Status, url, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(c.App.Writer, "ready")
	return nil
}

// readyzURL builds the /readyz URL from --http-addr, which is usually the
// same value as the server's listen address (FLOTILLA_HTTP_ADDR).
func readyzURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/") + "/readyz"
	}
	return "http://" + hostPortForDial(addr) + "/readyz"
}

// hostPortForDial turns a listen address into one to dial: an empty or
// unspecified host (":8222", "0.0.0.0:8222", "[::]:8222") means this
// machine, so it becomes loopback.
func hostPortForDial(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
