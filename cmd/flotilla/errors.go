package main

import (
	"errors"
	"fmt"
)

var (
	// errNotHostPort means an address setting is not host:port with a
	// numeric port.
	errNotHostPort = errors.New("not a host:port address")
	// errInvalidNodeID means a node id is empty, too long or contains
	// whitespace or control characters.
	errInvalidNodeID = errors.New("must be 1 to 128 characters without whitespace")
	// errUnknownLogLevel means --log-level is not debug, info, warn or error.
	errUnknownLogLevel = errors.New("must be debug, info, warn or error")
	// errUnknownLogFormat means --log-format is not json or console.
	errUnknownLogFormat = errors.New("must be json or console")
	// errOutOfRange means a numeric setting is outside its allowed range.
	errOutOfRange = errors.New("out of range")
	// errInvalidServerID means the server_id file in the data dir holds
	// something this program did not write.
	errInvalidServerID = errors.New("invalid server id")
	// errClusterStarting answers cluster requests that arrive before the
	// cluster node has started.
	errClusterStarting = errors.New("cluster node is starting")
	// errNotLoopback means an address is not a loopback IP while
	// --unsafe-fault-injection is set.
	errNotLoopback = errors.New("must be a loopback IP address (127.0.0.1 or [::1]) with --unsafe-fault-injection")
)

// fieldError names the setting (its config key, which is also the flag name
// in snake_case) whose value failed validation. It has the same shape as
// transport.ConfigError so that both are annotated with where the value came
// from in the same way.
type fieldError struct {
	Field string
	Value any
	Err   error
}

func (e *fieldError) Error() string {
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("invalid %s %q: %v", e.Field, s, e.Err)
	}
	return fmt.Sprintf("invalid %s %v: %v", e.Field, e.Value, e.Err)
}

func (e *fieldError) Unwrap() error { return e.Err }
