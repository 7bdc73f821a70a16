package transport

import (
	"encoding/json"
	"fmt"
)

// serverInfo is the INFO payload. Field names and types are what nats.go
// reads (reference §1.2); headers must be true and max_payload positive or
// stock clients refuse to publish.
type serverInfo struct {
	ServerID     string   `json:"server_id"`
	ServerName   string   `json:"server_name"`
	Version      string   `json:"version"`
	Proto        int      `json:"proto"`
	Host         string   `json:"host"`
	Port         int      `json:"port"`
	Headers      bool     `json:"headers"`
	MaxPayload   int      `json:"max_payload"`
	AuthRequired bool     `json:"auth_required,omitempty"`
	ClientID     uint64   `json:"client_id"`
	ClientIP     string   `json:"client_ip,omitempty"`
	ConnectURLs  []string `json:"connect_urls,omitempty"`
	LameDuckMode bool     `json:"ldm,omitempty"`
	JetStream    bool     `json:"jetstream"`
	// Flotilla is our own version, ignored by clients, useful in captures.
	Flotilla string `json:"flotilla,omitempty"`
}

// appendInfo appends one INFO protocol line.
func appendInfo(dst []byte, info *serverInfo) []byte {
	b, err := json.Marshal(info)
	if err != nil {
		// serverInfo holds only strings, ints and bools: Marshal cannot fail.
		panic(fmt.Sprintf("marshal info: %v", err))
	}
	dst = append(dst, "INFO "...)
	dst = append(dst, b...)
	return append(dst, " \r\n"...)
}

// connectOpts is the subset of CONNECT we act on; unknown fields are
// ignored as the protocol requires. CONNECT is decoded into the current
// options, so fields a (second) CONNECT leaves out keep their values, as in
// nats-server.
type connectOpts struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	Echo         *bool  `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	User         string `json:"user"`
	Pass         string `json:"pass"`
	AuthToken    string `json:"auth_token"`
}

// defaultConnectOpts are the options before (and under) any CONNECT:
// nats-server assumes verbose and pedantic until a client says otherwise
// (stock clients always send both as false).
func defaultConnectOpts() connectOpts {
	return connectOpts{Verbose: true, Pedantic: true}
}

// echo reports whether the client wants its own publishes; absent means yes.
func (o *connectOpts) echo() bool { return o.Echo == nil || *o.Echo }
