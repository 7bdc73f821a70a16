// Package consumers holds the acceptance tests for JetStream consumers:
// durable pull consumers (Fetch, FetchNoWait, FetchBytes, Next, Consume,
// Messages), the status messages of pull requests, every ack kind,
// redelivery, max_deliver and backoff, deliver policies, subject filters,
// max_ack_pending, ordered and push consumers (the legacy js.Subscribe with
// flow control and idle heartbeats included), KV watch, the consumer API,
// waiting pull requests across a leader change, and consumption across a
// leader kill.
//
// The tests speak only through the stock nats.go client over real TCP: its
// jetstream package, its legacy JetStream API, and plain subscriptions
// where a status message is not surfaced otherwise. By default they run against a three-node in-process Flotilla cluster,
// with consuming clients connected to followers. With
// FLOTILLA_CONSUMER_ORACLE=nats-server they run against an in-process
// nats-server with JetStream instead, which is how the tests themselves were
// validated: a test that fails there is wrong, not the server. Tests that
// kill the Raft leader only run on Flotilla.
//
// The package has no non-test code; it must not be imported.
package consumers
