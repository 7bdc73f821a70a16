// Package broker is Flotilla's domain: subjects and their NATS wildcard
// matching, subscriptions and queue groups, the delivery of published
// messages to the subscribers that match them on this node, and their
// routing to the other nodes of the cluster (interest propagation, one
// forwarded frame per interested peer, cluster-wide queue groups). It also
// holds the Raft command envelope, the replicated state machine (FSM,
// which implements cluster.StateMachine) with its durable streams, and the
// JetStream service: the $JS.API responder and the capture of stream-bound
// publishes, both executed on the leader (consumers come next).
//
// The broker knows nothing about sockets or wire formats: transport calls it
// through the Broker service (Subscribe, Unsubscribe, Publish) and receives
// messages back through the Subscriber interface that each connection
// implements; node-to-node frames reach it through cluster.FrameHandler. It
// must not import transport, net, hashicorp/raft or memberlist; cmd/flotilla
// and transport may import it.
package broker
