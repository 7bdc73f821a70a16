// Package transport speaks the NATS client protocol: the accept loop, one
// read goroutine and one write goroutine per client connection, the pure
// byte-state-machine parser, INFO/CONNECT handling, PING/PONG and stale
// detection, limits, slow-consumer and rate-limit backpressure, and the
// mapping of domain errors to the -ERR texts stock clients understand.
//
// It calls into the broker through the Broker interface it declares and
// implements broker.Subscriber for delivery. It must not contain routing or
// storage logic, must not import cluster or storage, and is imported only by
// cmd/flotilla.
package transport
