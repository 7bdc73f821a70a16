package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// nodeStatus is the part of GET /cluster/status the harness reads.
type nodeStatus struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Servers      []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
	} `json:"raft_configuration"`
	Removed bool `json:"removed"`
}

// voters returns the ids of the voters in the node's Raft configuration.
func (s *nodeStatus) voters() []string {
	var out []string
	for _, v := range s.Servers {
		if v.Suffrage == "Voter" {
			out = append(out, v.ID)
		}
	}
	return out
}

// httpClient talks to the nodes' http listeners. Every call has its own
// short timeout: a paused node must not stall the harness.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// getStatus reads a node's /cluster/status.
func getStatus(ctx context.Context, base string) (*nodeStatus, error) {
	var st nodeStatus
	if err := doJSON(ctx, http.MethodGet, base+"/cluster/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// isReady reports whether a node's /readyz answers 200.
func isReady(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// removeNode asks a node to decommission id (POST /cluster/remove).
func removeNode(ctx context.Context, base, id string) error {
	return doJSON(ctx, http.MethodPost, base+"/cluster/remove?node="+url.QueryEscape(id), nil, nil)
}

// faultRequest is the body of the fault-injection endpoints (contract A).
type faultRequest struct {
	Addrs     []string `json:"addrs,omitempty"`
	Direction string   `json:"direction,omitempty"`
}

// blockAddrs makes a node drop its traffic with addrs in direction
// ("in", "out" or "both").
func blockAddrs(ctx context.Context, base string, addrs []string, direction string) error {
	return doJSON(ctx, http.MethodPost, base+"/debug/faults/block", faultRequest{Addrs: addrs, Direction: direction}, nil)
}

// healAll lifts every block on a node.
func healAll(ctx context.Context, base string) error {
	return doJSON(ctx, http.MethodPost, base+"/debug/faults/heal", struct{}{}, nil)
}

// errHTTPStatus marks a non-2xx answer.
var errHTTPStatus = errors.New("http status")

// doJSON sends body (if any) as JSON and decodes a 2xx answer into out.
func doJSON(ctx context.Context, method, u string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w %d: %s", method, u, errHTTPStatus, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	}
	return nil
}
