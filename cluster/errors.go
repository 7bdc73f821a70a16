package cluster

import "errors"

var (
	// ErrNotLeader means the operation must run on the leader and this node
	// is not it. Callers normally use Forward, which handles this.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader means no leader was known within the hold timeout.
	ErrNoLeader = errors.New("no raft leader")
	// ErrLeadershipLost means leadership was lost before a command was
	// committed; the command may or may not have been applied.
	ErrLeadershipLost = errors.New("leadership lost while committing")
	// ErrTimeout means Raft did not accept or commit in time.
	ErrTimeout = errors.New("raft timeout")
	// ErrShutdown means the node is shutting down.
	ErrShutdown = errors.New("cluster node is shut down")
	// ErrUnknownNode names a node that is neither a member nor in the Raft
	// configuration.
	ErrUnknownNode = errors.New("unknown node")
	// ErrQuorum means removing a node would leave fewer voters than a
	// quorum of the configured size.
	ErrQuorum = errors.New("operation would break quorum")
	// ErrNoHandler means a forwarded request named a kind no handler is
	// registered for.
	ErrNoHandler = errors.New("no handler for forwarded request")
	// ErrPeerUnavailable means a frame could not be queued for a peer.
	ErrPeerUnavailable = errors.New("peer unavailable")
	// ErrLogStoreMismatch means the data dir holds a Raft log of another
	// kind than the one asked for (Config.RaftLogStore).
	ErrLogStoreMismatch = errors.New("raft log store kind mismatch")
)

// RemoteError carries an error text returned by another node for a
// forwarded request. Is matches the sentinels above by their text, which is
// the only thing that crosses the wire.
type RemoteError struct {
	Node string
	Msg  string
}

func (e *RemoteError) Error() string { return "node " + e.Node + ": " + e.Msg }

// Is lets errors.Is(err, ErrNotLeader) work across the wire.
func (e *RemoteError) Is(target error) bool {
	for _, s := range wireSentinels {
		if target == s && e.Msg == s.Error() {
			return true
		}
	}
	return false
}

// wireSentinels are the sentinels that keep their identity across nodes.
var wireSentinels = []error{ErrNotLeader, ErrNoLeader, ErrLeadershipLost, ErrTimeout, ErrShutdown, ErrUnknownNode, ErrQuorum, ErrNoHandler}
