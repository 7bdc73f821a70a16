package chaos

import (
	"context"
	"fmt"
	"strings"
)

// Backend runs a cluster and injects faults into it. Node names are the
// harness's slots ("n1".."nN"), which are also the nodes' ids. Every
// method that changes a node waits until the change happened (a killed
// node is gone, a restarted one was started) but not until the cluster
// recovered: the nemesis waits for that over the nodes' http endpoints.
type Backend interface {
	// Name is "process" or "docker".
	Name() string
	Capabilities() Capabilities
	// Nodes returns the node names in order.
	Nodes() []string
	// Start creates and starts every node (fresh data).
	Start(ctx context.Context) error
	// ClientURL is the nats:// URL a client on this host uses for node.
	ClientURL(node string) string
	// HTTPURL is the http:// base URL of node's http listener.
	HTTPURL(node string) string

	// Kill stops nodes at once (SIGKILL), paused or not, all together.
	Kill(ctx context.Context, nodes ...string) error
	// Stop stops node gracefully (SIGTERM) and waits until it exited.
	Stop(ctx context.Context, node string) error
	// Restart starts a stopped or killed node again from its data.
	Restart(ctx context.Context, node string) error
	// Pause freezes nodes (SIGSTOP, docker pause) all together; Resume
	// thaws them.
	Pause(ctx context.Context, nodes ...string) error
	Resume(ctx context.Context, nodes ...string) error
	// Wipe deletes a stopped node's data, so that its next Restart joins
	// the cluster as a new node under the same name.
	Wipe(ctx context.Context, node string) error

	// Partition applies a network partition (see Partition) on top of
	// the current one; Heal removes every partition.
	Partition(ctx context.Context, p Partition) error
	Heal(ctx context.Context) error

	// StateFile returns the path of a stopped node's state.db on this
	// host (the docker backend copies it out of the container first).
	StateFile(ctx context.Context, node string) (string, error)
	// SaveLogs copies every node's log into dir (for the artifacts).
	SaveLogs(ctx context.Context, dir string) error
	// Crashes describes every node exit the harness did not cause: a
	// node that exited by itself (a panic, a fatal error), or one that
	// exited with an error status when stopped gracefully. Each entry
	// names the node, its exit status and, when its log has one, the
	// panic line.
	Crashes(ctx context.Context) []string
	// Close stops everything this backend started and removes its
	// processes, containers, networks, volumes and temp files. It is safe
	// to call more than once and after a failed Start.
	Close() error
}

// Cut drops the traffic that From sends to To (cluster links: Raft,
// forwarding, routing, and gossip).
type Cut struct{ From, To string }

// Partition is a set of cut links. Isolated names the nodes cut off from
// every other node in both directions, when the partition is only that: a
// backend that can only disconnect whole nodes (docker) uses it and
// ignores Cuts; one that can cut single links uses Cuts.
type Partition struct {
	Cuts     []Cut
	Isolated []string
}

// String renders the partition as groups and one-way cuts, e.g.
// "[n1] | [n2 n3]" or "n1 -/-> n2, n1 -/-> n3".
func (p Partition) String() string {
	cut := map[Cut]bool{}
	for _, c := range p.Cuts {
		cut[c] = true
	}
	var oneWay, twoWay []string
	for _, c := range p.Cuts {
		if cut[Cut{c.To, c.From}] {
			if c.From < c.To {
				twoWay = append(twoWay, c.From+" x "+c.To)
			}
			continue
		}
		oneWay = append(oneWay, c.From+" -/-> "+c.To)
	}
	return strings.Join(append(twoWay, oneWay...), ", ")
}

// bothWays returns the cuts separating every node of a from every node of b.
func bothWays(a, b []string) []Cut {
	var out []Cut
	for _, x := range a {
		for _, y := range b {
			out = append(out, Cut{x, y}, Cut{y, x})
		}
	}
	return out
}

// groups renders a split as "[a b] | [c d e]".
func groups(a, b []string) string {
	return fmt.Sprintf("%v | %v", a, b)
}

// panicLine returns the first "panic:" or "fatal error:" line of a node's
// log after its last start, as ": <line>", or "".
func panicLine(log string) string {
	if i := strings.LastIndex(log, startMarker); i >= 0 {
		log = log[i:]
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			return ": " + l
		}
	}
	return ""
}

// startMarker begins the harness's line in a node's log at each start.
const startMarker = "=== chaos: starting "
