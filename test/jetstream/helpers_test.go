package jetstream

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(d))
	t.Cleanup(cancel)
	return ctx
}

// connectJS connects a nats.go client to node and returns its JetStream
// handle; the client may fail over to the other nodes (connect_urls).
func connectJS(t *testing.T, node *testcluster.Node, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(node.ClientURL, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", node.ID, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// follower returns a node that is not the leader.
func follower(t *testing.T, c *testcluster.Cluster) *testcluster.Node {
	t.Helper()
	c.WaitLeader()
	return c.Followers()[0]
}

// waitReplicas waits until every running node has applied what the leader
// has, then compares their copies of stream byte for byte.
func assertReplicasEqual(t *testing.T, c *testcluster.Cluster, stream string) uint64 {
	t.Helper()
	// Replicas converge asynchronously (and after a restart each replays
	// its log progressively), so wait until every replica applied all the
	// leader committed and their stream states agree.
	var leader *testcluster.Node
	var ref *broker.StreamInfo
	testutil.Eventually(t, 20*time.Second, func() error {
		leader = c.WaitLeader()
		st := leader.Cluster.Status()
		if st.AppliedIndex < st.CommitIndex {
			return fmt.Errorf("leader %s applied %d < commit %d", leader.ID, st.AppliedIndex, st.CommitIndex)
		}
		var apiErr *broker.APIError
		if ref, apiErr = leader.FSM.StreamInfo(stream); apiErr != nil {
			return fmt.Errorf("leader %s: %v", leader.ID, apiErr)
		}
		for _, n := range c.Running() {
			if n.Cluster.AppliedIndex() < st.CommitIndex {
				return fmt.Errorf("%s applied %d < commit %d", n.ID, n.Cluster.AppliedIndex(), st.CommitIndex)
			}
			info, apiErr := n.FSM.StreamInfo(stream)
			if apiErr != nil {
				return fmt.Errorf("%s: %v", n.ID, apiErr)
			}
			if info.State.Msgs != ref.State.Msgs || info.State.FirstSeq != ref.State.FirstSeq || info.State.LastSeq != ref.State.LastSeq || info.State.Bytes != ref.State.Bytes {
				return fmt.Errorf("%s state %+v, leader %s state %+v", n.ID, info.State, leader.ID, ref.State)
			}
		}
		return nil
	})
	for seq := ref.State.FirstSeq; seq <= ref.State.LastSeq && ref.State.Msgs > 0; seq++ {
		want, e1 := leader.FSM.GetMsg(stream, broker.MsgGetRequest{Seq: seq})
		for _, n := range c.Running() {
			got, e2 := n.FSM.GetMsg(stream, broker.MsgGetRequest{Seq: seq})
			if (e1 == nil) != (e2 == nil) {
				t.Fatalf("seq %d: leader err %v, %s err %v", seq, e1, n.ID, e2)
			}
			if e1 != nil {
				continue
			}
			if got.Subject != want.Subject || !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Data, want.Data) || !got.Time.Equal(want.Time) {
				t.Fatalf("seq %d differs on %s: %q %q vs leader %q %q", seq, n.ID, got.Subject, got.Data, want.Subject, want.Data)
			}
		}
	}
	return ref.State.LastSeq
}

func mustCreateStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(ctxT(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
	return s
}

func body(i int) []byte { return fmt.Appendf(nil, "msg-%06d", i) }
