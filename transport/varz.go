package transport

import (
	"sort"
	"time"
)

// Varz is the JSON diagnostics document served at /debug/vars: the limits in
// force, totals, and every open connection with its subscriptions.
type Varz struct {
	ServerID         string     `json:"server_id"`
	ServerName       string     `json:"server_name"`
	Version          string     `json:"version"`
	ClientAddr       string     `json:"client_addr"`
	Start            time.Time  `json:"start"`
	Now              time.Time  `json:"now"`
	Uptime           string     `json:"uptime"`
	Connections      int        `json:"connections"`
	TotalConnections uint64     `json:"total_connections"`
	Subscriptions    int        `json:"subscriptions"`
	SlowConsumers    int64      `json:"slow_consumers"`
	InMsgs           int64      `json:"in_msgs"`
	OutMsgs          int64      `json:"out_msgs"`
	InBytes          int64      `json:"in_bytes"`
	OutBytes         int64      `json:"out_bytes"`
	Limits           VarzLimits `json:"limits"`
	Conns            []ConnInfo `json:"conns"`
}

// VarzLimits lists the configured limits.
type VarzLimits struct {
	MaxPayload       int     `json:"max_payload"`
	MaxControlLine   int     `json:"max_control_line"`
	MaxConnections   int     `json:"max_connections"`
	MaxSubscriptions int     `json:"max_subscriptions"`
	MaxPending       int     `json:"max_pending"`
	AuthTimeout      string  `json:"auth_timeout"`
	PingInterval     string  `json:"ping_interval"`
	MaxPingsOut      int     `json:"max_pings_out"`
	WriteDeadline    string  `json:"write_deadline"`
	RateLimitMsgs    float64 `json:"rate_limit_msgs"`
	RateLimitBytes   float64 `json:"rate_limit_bytes"`
	AuthRequired     bool    `json:"auth_required"`
}

// ConnInfo describes one client connection.
type ConnInfo struct {
	ConnID        uint64    `json:"conn_id"`
	RemoteAddr    string    `json:"remote_addr"`
	ClientName    string    `json:"client_name"`
	Lang          string    `json:"lang"`
	Version       string    `json:"version"`
	Start         time.Time `json:"start"`
	InMsgs        int64     `json:"in_msgs"`
	OutMsgs       int64     `json:"out_msgs"`
	InBytes       int64     `json:"in_bytes"`
	OutBytes      int64     `json:"out_bytes"`
	PendingBytes  int       `json:"pending_bytes"`
	Subscriptions []SubInfo `json:"subscriptions"`
}

// SubInfo describes one subscription.
type SubInfo struct {
	SID       string `json:"sid"`
	Subject   string `json:"subject"`
	Queue     string `json:"queue,omitempty"`
	Delivered int64  `json:"delivered"`
}

// Varz returns a snapshot of the server's state. Counters of connections
// that already closed are kept in the totals.
func (s *Server) Varz() Varz {
	now := time.Now()
	v := Varz{
		ServerID:      s.cfg.ServerID,
		ServerName:    s.cfg.ServerName,
		Version:       s.cfg.Version,
		Start:         s.start,
		Now:           now,
		Uptime:        now.Sub(s.start).Round(time.Second).String(),
		SlowConsumers: s.slowConsumers.Load(),
		InMsgs:        s.closedStats.inMsgs.Load(),
		OutMsgs:       s.closedStats.outMsgs.Load(),
		InBytes:       s.closedStats.inBytes.Load(),
		OutBytes:      s.closedStats.outBytes.Load(),
		Limits: VarzLimits{
			MaxPayload:       s.cfg.MaxPayload,
			MaxControlLine:   s.cfg.MaxControlLine,
			MaxConnections:   s.cfg.MaxConnections,
			MaxSubscriptions: s.cfg.MaxSubscriptions,
			MaxPending:       s.cfg.MaxPending,
			AuthTimeout:      s.cfg.AuthTimeout.String(),
			PingInterval:     s.cfg.PingInterval.String(),
			MaxPingsOut:      s.cfg.MaxPingsOut,
			WriteDeadline:    s.cfg.WriteDeadline.String(),
			RateLimitMsgs:    s.cfg.RateLimitMsgs,
			RateLimitBytes:   s.cfg.RateLimitBytes,
			AuthRequired:     s.authRequired(),
		},
	}
	if s.ln != nil {
		v.ClientAddr = s.ln.Addr().String()
	}
	s.mu.Lock()
	v.TotalConnections = s.total
	s.mu.Unlock()
	for _, c := range s.snapshotConns() {
		ci := c.info()
		v.Conns = append(v.Conns, ci)
		v.Subscriptions += len(ci.Subscriptions)
		v.InMsgs += ci.InMsgs
		v.OutMsgs += ci.OutMsgs
		v.InBytes += ci.InBytes
		v.OutBytes += ci.OutBytes
	}
	sort.Slice(v.Conns, func(i, j int) bool { return v.Conns[i].ConnID < v.Conns[j].ConnID })
	v.Connections = len(v.Conns)
	return v
}

// info snapshots one connection for Varz.
func (c *conn) info() ConnInfo {
	ci := ConnInfo{
		ConnID:     c.id,
		RemoteAddr: c.remote,
		Start:      c.start,
		InMsgs:     c.stats.inMsgs.Load(),
		OutMsgs:    c.stats.outMsgs.Load(),
		InBytes:    c.stats.inBytes.Load(),
		OutBytes:   c.stats.outBytes.Load(),
	}
	c.outMu.Lock()
	ci.PendingBytes = c.out.n + c.inFlight
	c.outMu.Unlock()
	c.subMu.Lock()
	ci.ClientName, ci.Lang, ci.Version = c.name, c.lang, c.ver
	ci.Subscriptions = make([]SubInfo, 0, len(c.subs))
	for _, sub := range c.subs {
		ci.Subscriptions = append(ci.Subscriptions, SubInfo{SID: sub.SID, Subject: sub.Subject, Queue: sub.Queue, Delivered: sub.Delivered()})
	}
	c.subMu.Unlock()
	sort.Slice(ci.Subscriptions, func(i, j int) bool { return ci.Subscriptions[i].SID < ci.Subscriptions[j].SID })
	return ci
}
