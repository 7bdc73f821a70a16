// Package jetstream drives durable streams on a real three-node cluster
// (in-process nodes over TCP, real Raft and BoltDB files) with the stock
// nats.go jetstream client: the stream API, acknowledged publishes,
// de-duplication across failover, expected-* headers, limits, KV basics,
// and durability under leader kills, full restarts and a wiped node.
package jetstream
