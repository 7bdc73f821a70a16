// Command flotilla is Flotilla's single binary: `flotilla server` runs a
// node, and `pub`, `sub`, `req`, `healthcheck` and `version` are small
// clients and probes built on nats.go.
//
// This package is the composition root and the only place that knows every
// other package: it maps flags, FLOTILLA_* environment variables and the
// optional YAML config file onto each package's Config (precedence flag >
// env > file > default), wires logger, metrics registry, broker, transport
// and the http listener together, and owns signals and the shutdown order.
//
// It must not contain protocol, routing or storage logic, and nothing may
// import it.
package main
