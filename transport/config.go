package transport

import (
	"fmt"
	"net"
	"time"
)

// Defaults for Config. They follow nats-server's so that stock clients see
// familiar behaviour.
const (
	DefaultAddr            = "127.0.0.1:4222"
	DefaultMaxPayload      = 1 << 20 // 1 MiB, advertised in INFO
	DefaultMaxControlLine  = 4096
	DefaultMaxConnections  = 65536
	DefaultMaxPending      = 64 << 20 // per-connection outbound buffer
	DefaultAuthTimeout     = 2 * time.Second
	DefaultPingInterval    = 2 * time.Minute
	DefaultMaxPingsOut     = 2
	DefaultWriteDeadline   = 10 * time.Second
	DefaultProtocolVersion = "2.10.0" // what INFO.version says; clients gate features on >= 2.9.0
)

// Config holds the client listener's settings and limits.
type Config struct {
	// Addr is the host:port the client listener binds.
	Addr string
	// AdvertiseAddr is the host:port clients should use to reach this node
	// (connect_urls); empty means Addr.
	AdvertiseAddr string
	// ServerID is this node's stable unique id (INFO server_id).
	ServerID string
	// ServerName is the human-readable node name (INFO server_name).
	ServerName string
	// Version is the NATS server version advertised in INFO.
	Version string

	// MaxPayload is the largest header+payload a client may publish.
	MaxPayload int
	// MaxControlLine is the longest protocol line (without payload) accepted.
	MaxControlLine int
	// MaxConnections caps concurrent client connections; 0 means no limit.
	MaxConnections int
	// MaxSubscriptions caps subscriptions per connection; 0 means no limit.
	MaxSubscriptions int
	// MaxPending caps the bytes buffered for one client before it is
	// disconnected as a slow consumer.
	MaxPending int
	// AuthTimeout is how long a new client has to send CONNECT.
	AuthTimeout time.Duration
	// PingInterval is how often the server PINGs an idle client.
	PingInterval time.Duration
	// MaxPingsOut is how many PINGs may go unanswered before the connection
	// is declared stale and closed.
	MaxPingsOut int
	// WriteDeadline bounds one write to a client; a client that does not
	// read for this long is a slow consumer.
	WriteDeadline time.Duration

	// RateLimitMsgs limits the messages per second one connection may
	// publish; 0 disables the limit. Over the limit the server stops
	// reading from the connection instead of dropping anything.
	RateLimitMsgs float64
	// RateLimitBytes limits the payload bytes per second one connection may
	// publish; 0 disables the limit.
	RateLimitBytes float64

	// JetStream says whether INFO advertises jetstream:true (the node runs
	// the JetStream API).
	JetStream bool

	// Username and Password, when set, are required in CONNECT.
	Username string
	Password string
	// Token, when set, is required as CONNECT auth_token.
	Token string
}

// DefaultConfig returns the single-node defaults.
func DefaultConfig() Config {
	return Config{
		Addr:           DefaultAddr,
		Version:        DefaultProtocolVersion,
		MaxPayload:     DefaultMaxPayload,
		MaxControlLine: DefaultMaxControlLine,
		MaxConnections: DefaultMaxConnections,
		MaxPending:     DefaultMaxPending,
		AuthTimeout:    DefaultAuthTimeout,
		PingInterval:   DefaultPingInterval,
		MaxPingsOut:    DefaultMaxPingsOut,
		WriteDeadline:  DefaultWriteDeadline,
	}
}

// ConfigError names the configuration field that failed validation.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s %v: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return &ConfigError{Field: "client_addr", Value: c.Addr, Err: ErrInvalidAddr}
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return &ConfigError{Field: "advertise_client_addr", Value: c.AdvertiseAddr, Err: ErrInvalidAddr}
		}
	}
	ints := []struct {
		field string
		value int
		min   int
	}{
		{"max_payload", c.MaxPayload, 1},
		{"max_control_line", c.MaxControlLine, 64},
		{"max_connections", c.MaxConnections, 0},
		{"max_subscriptions", c.MaxSubscriptions, 0},
		{"max_pending", c.MaxPending, c.MaxPayload},
		{"max_pings_out", c.MaxPingsOut, 1},
	}
	for _, ck := range ints {
		if ck.value < ck.min {
			return &ConfigError{Field: ck.field, Value: ck.value, Err: fmt.Errorf("%w: must be at least %d", ErrOutOfRange, ck.min)}
		}
	}
	durations := []struct {
		field string
		value time.Duration
	}{
		{"auth_timeout", c.AuthTimeout},
		{"ping_interval", c.PingInterval},
		{"write_deadline", c.WriteDeadline},
	}
	for _, ck := range durations {
		if ck.value < time.Millisecond {
			return &ConfigError{Field: ck.field, Value: ck.value, Err: fmt.Errorf("%w: must be at least 1ms", ErrOutOfRange)}
		}
	}
	if c.MaxPayload > 64<<20 {
		return &ConfigError{Field: "max_payload", Value: c.MaxPayload, Err: fmt.Errorf("%w: at most 64 MiB", ErrOutOfRange)}
	}
	if c.RateLimitMsgs < 0 {
		return &ConfigError{Field: "rate_limit_msgs", Value: c.RateLimitMsgs, Err: ErrOutOfRange}
	}
	if c.RateLimitBytes < 0 {
		return &ConfigError{Field: "rate_limit_bytes", Value: c.RateLimitBytes, Err: ErrOutOfRange}
	}
	if c.RateLimitBytes > 0 && c.RateLimitBytes < float64(c.MaxPayload) {
		// The limiter must be able to admit the largest allowed message.
		return &ConfigError{Field: "rate_limit_bytes", Value: c.RateLimitBytes, Err: fmt.Errorf("%w: must be at least max_payload", ErrOutOfRange)}
	}
	if (c.Username == "") != (c.Password == "") {
		return &ConfigError{Field: "user", Value: c.Username, Err: ErrAuthIncomplete}
	}
	if c.Token != "" && c.Username != "" {
		return &ConfigError{Field: "auth_token", Value: "<redacted>", Err: ErrAuthConflict}
	}
	return nil
}
