// Package differential runs the same client protocol traffic against
// Flotilla's transport and an in-process nats-server (the oracle) and
// requires both to answer with the same bytes.
//
// It holds tests only. It must not be imported, must not change either
// server's behaviour, and must never contain nats-server code: nats-server
// is only started and talked to over TCP, as a black box.
package differential
