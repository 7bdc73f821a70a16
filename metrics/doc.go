// Package metrics declares Flotilla's Prometheus collectors as plain structs
// (Transport, later Broker and Cluster), built by New on a registry that the
// caller owns. Each node has its own registry, so several nodes can run in
// one test process without duplicate-registration panics.
//
// It is a leaf: it imports only the Prometheus client and must not import
// any other Flotilla package or register anything on the global registry.
package metrics
