package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// clusterCommand groups the cluster administration commands. They talk to
// any node's http listener; changes are forwarded to the Raft leader.
func clusterCommand() *cli.Command {
	addr := func() cli.Flag {
		return &cli.StringFlag{
			Name: flagHTTPAddr, EnvVars: envVars(flagHTTPAddr), Value: defaultHTTPAddr,
			Usage: "any node's http listener, host:port or http://host:port",
		}
	}
	timeout := func(d time.Duration) cli.Flag {
		return &cli.DurationFlag{Name: flagTimeout, Value: d, Usage: "time allowed for the request"}
	}
	return &cli.Command{
		Name:  "cluster",
		Usage: "show and change cluster membership (status, remove, transfer-leader)",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "print the node's view of the cluster: members, addresses and health, the Raft configuration, the leader, indexes (JSON)",
				Flags: []cli.Flag{addr(), timeout(5 * time.Second)},
				Action: func(c *cli.Context) error {
					return clusterRequest(c, http.MethodGet, "/cluster/status", nil)
				},
			},
			{
				Name:      "remove",
				Usage:     "decommission NODE: remove it from the Raft configuration and make it leave (a plain stop never does this)",
				ArgsUsage: "NODE",
				Flags:     []cli.Flag{addr(), timeout(35 * time.Second)},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("usage: flotilla cluster remove NODE")
					}
					return clusterRequest(c, http.MethodPost, "/cluster/remove", url.Values{"node": {c.Args().First()}})
				},
			},
			{
				Name:      "transfer-leader",
				Usage:     "move Raft leadership to NODE, or to the most up-to-date follower when NODE is omitted",
				ArgsUsage: "[NODE]",
				Flags:     []cli.Flag{addr(), timeout(35 * time.Second)},
				Action: func(c *cli.Context) error {
					q := url.Values{}
					if c.NArg() > 0 {
						q.Set("node", c.Args().First())
					}
					return clusterRequest(c, http.MethodPost, "/cluster/transfer-leader", q)
				},
			},
		},
	}
}

// clusterRequest calls a cluster endpoint and prints its JSON answer; a
// non-2xx answer is an error carrying the server's message.
func clusterRequest(c *cli.Context, method, path string, q url.Values) error {
	base := c.String(flagHTTPAddr)
	if !strings.Contains(base, "://") {
		base = "http://" + hostPortForDial(base)
	}
	u := strings.TrimSuffix(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(c.Context, method, u, nil)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", path, err)
	}
	resp, err := (&http.Client{Timeout: c.Duration(flagTimeout)}).Do(req)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("cluster %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = c.App.Writer.Write(body)
	return err
}
