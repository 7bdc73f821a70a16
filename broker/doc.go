// Package broker is Flotilla's domain: subjects and their NATS wildcard
// matching, subscriptions and queue groups, and the delivery of published
// messages to the subscribers that match them. Later issues add streams,
// consumers, the command codec and the FSM (which implements
// cluster.StateMachine) here.
//
// The broker knows nothing about sockets or wire formats: transport calls it
// through the Broker service (Subscribe, Unsubscribe, Publish) and receives
// messages back through the Subscriber interface that each connection
// implements. It must not import transport, net, hashicorp/raft or
// memberlist; cmd/flotilla and transport may import it.
package broker
