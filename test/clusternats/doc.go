// Package clusternats drives a real three-node Flotilla cluster (in-process
// nodes over real TCP: Raft, gossip, node-to-node frames, client listeners)
// with stock nats.go clients: cross-node pub/sub, queue groups and
// request/reply, and client failover through connect_urls.
package clusternats
