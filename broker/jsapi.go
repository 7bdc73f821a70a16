package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// apiRequest is one $JS.API request received from a local client.
type apiRequest struct {
	subject string
	reply   string
	body    []byte
}

// apiSubscriber receives $JS.API.> requests published on this node. It
// runs on the publisher's goroutine, so it only copies and queues.
type apiSubscriber struct{ js *JetStream }

func (a apiSubscriber) Deliver(_ *Subscription, m *Message) {
	if len(m.Reply) == 0 {
		return // requests without a reply subject are ignored (ADR-1)
	}
	req := apiRequest{subject: string(m.Subject), reply: string(m.Reply), body: append([]byte(nil), m.Payload...)}
	select {
	case a.js.apiQ <- req:
	default:
		a.js.log.Warn("jetstream api queue full, request dropped", zap.String("subject", req.subject))
	}
}

func (js *JetStream) apiWorker() {
	defer js.wg.Done()
	for {
		select {
		case <-js.stop:
			return
		case req := <-js.apiQ:
			js.serveAPI(req)
		}
	}
}

// serveAPI forwards one request to the leader and publishes its answer to
// the client's reply subject.
func (js *JetStream) serveAPI(req apiRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	op, _ := splitAPISubject(req.subject)
	pull := op == "CONSUMER.MSG.NEXT"
	var before string
	if pull {
		before, _ = js.raft.Leader()
	}
	resp, err := js.raft.Forward(ctx, forwardJSAPI, encodeAPIRequest(req.subject, req.reply, req.body))
	if err != nil {
		js.log.Warn("jetstream api request failed", zap.String("subject", req.subject), zap.Error(err))
		if pull {
			// A pull request's inbox takes status messages, not JSON.
			js.sendStatus(req.reply, StatusConflict(StatusTextLeadershipChange, 0, 0, false))
			return
		}
		js.respond(req.reply, errorResponse(apiType(req.subject), ErrClusterUnavailable()))
		return
	}
	if len(resp) < 8 {
		js.log.Error("short jetstream api response", zap.String("subject", req.subject))
		return
	}
	if len(resp) == 8 {
		// A pull request: the leader answers the inbox directly. It
		// waits there, so this node remembers it for a leader change.
		if pull {
			after, _ := js.raft.Leader()
			js.trackPull(req.reply, req.body, before, after)
		}
		return
	}
	js.waitApplied(binary.BigEndian.Uint64(resp))
	js.respond(req.reply, resp[8:])
}

// API request wire format (node to leader): uint16-length-prefixed
// subject and reply, then the body.
func encodeAPIRequest(subject, reply string, body []byte) []byte {
	b := make([]byte, 0, 4+len(subject)+len(reply)+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(len(subject)))
	b = append(b, subject...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reply)))
	b = append(b, reply...)
	return append(b, body...)
}

func decodeAPIRequest(b []byte) (subject, reply string, body []byte, err error) {
	take := func() (string, bool) {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	var ok1, ok2 bool
	subject, ok1 = take()
	reply, ok2 = take()
	if !ok1 || !ok2 {
		return "", "", nil, errShortAPIRequest
	}
	return subject, reply, b, nil
}

var errShortAPIRequest = errors.New("short jetstream api request")

// leaderAPI executes a request on the leader and returns the applied
// index (for read-your-writes on the ingress node) and the JSON answer.
func (js *JetStream) leaderAPI(ctx context.Context, req []byte) ([]byte, error) {
	if !js.raft.IsLeader() {
		return nil, cluster.ErrNotLeader
	}
	subject, reply, body, err := decodeAPIRequest(req)
	if err != nil {
		return nil, err
	}
	out, err := js.execAPI(ctx, subject, reply, body)
	if err != nil {
		return nil, err
	}
	resp := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(out)), js.raft.AppliedIndex())
	return append(resp, out...), nil
}

// execAPI is the one switch over API operations.
func (js *JetStream) execAPI(ctx context.Context, subject, reply string, body []byte) ([]byte, error) {
	op, arg := splitAPISubject(subject)
	typ := apiType(subject)
	switch op {
	case "INFO":
		return js.accountInfo(typ), nil
	case "STREAM.CREATE":
		return js.streamChange(ctx, typ, arg, body, EncodeStreamCreate)
	case "STREAM.UPDATE":
		return js.streamChange(ctx, typ, arg, body, EncodeStreamUpdate)
	case "STREAM.INFO":
		return js.streamInfo(typ, arg), nil
	case "STREAM.NAMES":
		return js.streamNames(typ, body), nil
	case "STREAM.LIST":
		return js.streamList(typ, body), nil
	case "STREAM.DELETE":
		return js.streamDelete(ctx, typ, arg)
	case "CONSUMER.CREATE", "CONSUMER.DURABLE.CREATE":
		return js.consumerCreate(ctx, typ, op, arg, body)
	case "CONSUMER.INFO":
		return js.consumerInfo(typ, arg)
	case "CONSUMER.DELETE":
		return js.consumerDelete(ctx, typ, arg)
	case "CONSUMER.NAMES":
		return js.consumerNames(typ, arg, body, false)
	case "CONSUMER.LIST":
		return js.consumerNames(typ, arg, body, true)
	case "CONSUMER.MSG.NEXT":
		return js.consumerNext(arg, reply, body)
	case "STREAM.PURGE":
		return js.streamPurge(ctx, typ, arg, body)
	case "STREAM.MSG.GET":
		return js.msgGet(typ, arg, body), nil
	case "STREAM.MSG.DELETE":
		return js.msgDelete(ctx, typ, arg, body)
	default:
		return errorResponse(typ, NewAPIError(400, 10003, "the "+strings.ToLower(op)+" api is not supported by this server yet")), nil
	}
}

// splitAPISubject splits "$JS.API.STREAM.INFO.orders" into the operation
// ("STREAM.INFO") and its argument ("orders").
func splitAPISubject(subject string) (op, arg string) {
	rest := strings.TrimPrefix(subject, apiPrefix)
	for _, known := range []string{"STREAM.MSG.DELETE", "STREAM.MSG.GET", "STREAM.CREATE", "STREAM.UPDATE", "STREAM.INFO",
		"STREAM.DELETE", "STREAM.PURGE", "STREAM.NAMES", "STREAM.LIST", "INFO",
		"CONSUMER.DURABLE.CREATE", "CONSUMER.CREATE", "CONSUMER.INFO", "CONSUMER.DELETE", "CONSUMER.NAMES",
		"CONSUMER.LIST", "CONSUMER.MSG.NEXT"} {
		if rest == known {
			return known, ""
		}
		if strings.HasPrefix(rest, known+".") {
			return known, rest[len(known)+1:]
		}
	}
	return rest, ""
}

// apiType is the response "type" string the CLI validates against (§2.1).
func apiType(subject string) string {
	op, _ := splitAPISubject(subject)
	name := map[string]string{
		"INFO": "account_info_response", "STREAM.CREATE": "stream_create_response", "STREAM.UPDATE": "stream_update_response",
		"STREAM.INFO": "stream_info_response", "STREAM.NAMES": "stream_names_response", "STREAM.LIST": "stream_list_response",
		"STREAM.DELETE": "stream_delete_response", "STREAM.PURGE": "stream_purge_response",
		"STREAM.MSG.GET": "stream_msg_get_response", "STREAM.MSG.DELETE": "stream_msg_delete_response",
		"CONSUMER.CREATE": "consumer_create_response", "CONSUMER.DURABLE.CREATE": "consumer_create_response",
		"CONSUMER.INFO": "consumer_info_response", "CONSUMER.DELETE": "consumer_delete_response",
		"CONSUMER.NAMES": "consumer_names_response", "CONSUMER.LIST": "consumer_list_response",
	}[op]
	if name == "" {
		name = "error_response"
	}
	return "io.nats.jetstream.api.v1." + name
}

// errorResponse is the error envelope {"type":…,"error":{…}}.
func errorResponse(typ string, e *APIError) []byte {
	b, _ := json.Marshal(struct {
		Type  string    `json:"type"`
		Error *APIError `json:"error"`
	}{typ, e})
	return b
}

// okResponse merges "type" into a payload object.
func okResponse(typ string, payload any) []byte {
	body, err := json.Marshal(payload)
	if err != nil || len(body) < 2 || body[0] != '{' {
		panic(fmt.Sprintf("jetstream: response payload %T is not an object: %v", payload, err))
	}
	out := make([]byte, 0, len(body)+len(typ)+12)
	out = append(out, `{"type":`...)
	out, _ = appendJSONString(out, typ)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...)
}

func appendJSONString(b []byte, s string) ([]byte, error) {
	q, err := json.Marshal(s)
	return append(b, q...), err
}

// propose applies a command through Raft and returns the state machine's
// result.
func (js *JetStream) propose(ctx context.Context, cmd []byte) (any, error) {
	res, err := js.raft.Apply(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	return res, nil
}

func (js *JetStream) decorate(info *StreamInfo) *StreamInfo {
	if info == nil {
		return nil
	}
	leader, _ := js.raft.Leader()
	info.Cluster = &ClusterInfo{Leader: leader}
	info.TimeStamp = time.Now().UTC()
	return info
}

func (js *JetStream) accountInfo(typ string) []byte {
	streams := js.fsm.Streams()
	var storage uint64
	consumers := 0
	for _, s := range streams {
		storage += s.State.Bytes
		consumers += s.State.Consumers
	}
	return okResponse(typ, map[string]any{
		"memory": 0, "storage": storage, "reserved_memory": 0, "reserved_storage": 0,
		"streams": len(streams), "consumers": consumers,
		"limits": map[string]any{
			"max_memory": -1, "max_storage": -1, "max_streams": -1, "max_consumers": -1,
			"max_ack_pending": -1, "memory_max_stream_bytes": -1, "storage_max_stream_bytes": -1,
			"max_bytes_required": false,
		},
		// API level 0: the CLI then refuses features we do not have
		// (batch publish, direct batch get) up front (§2.1).
		"api": map[string]any{"level": 0, "total": 0, "errors": 0},
	})
}

func (js *JetStream) streamChange(ctx context.Context, typ, name string, body []byte, encode func(StreamConfig, time.Time) []byte) ([]byte, error) {
	var cfg StreamConfig
	if len(body) > 0 {
		if err := json.Unmarshal(body, &cfg); err != nil {
			return errorResponse(typ, NewAPIError(400, 10025, "invalid JSON: "+err.Error())), nil
		}
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Name != name {
		return errorResponse(typ, NewAPIError(400, 10056, "stream name in subject does not match request")), nil
	}
	// Direct gets are not served yet: clients then use STREAM.MSG.GET.
	cfg.AllowDirect = false
	if e := cfg.Normalize(); e != nil {
		return errorResponse(typ, e), nil
	}
	res, err := js.propose(ctx, encode(cfg, time.Now()))
	if err != nil {
		return nil, err
	}
	switch r := res.(type) {
	case *APIError:
		return errorResponse(typ, r), nil
	case *StreamInfo:
		return okResponse(typ, js.decorate(r)), nil
	default:
		return nil, fmt.Errorf("stream change: unexpected result %T", res)
	}
}

func (js *JetStream) streamInfo(typ, name string) []byte {
	info, e := js.fsm.StreamInfo(name)
	if e != nil {
		return errorResponse(typ, e)
	}
	// total/offset/limit stay 0: subject details are not returned (§2.1).
	return okResponse(typ, struct {
		*StreamInfo
		Total  int `json:"total"`
		Offset int `json:"offset"`
		Limit  int `json:"limit"`
	}{StreamInfo: js.decorate(info)})
}

// pageRequest is the body of NAMES and LIST.
type pageRequest struct {
	Offset  int    `json:"offset"`
	Subject string `json:"subject"`
}

const (
	namesPage = 1024 // nats-server's page sizes (§2.1)
	listPage  = 256
)

func parsePage(body []byte) pageRequest {
	var p pageRequest
	if len(body) > 0 {
		_ = json.Unmarshal(body, &p) // a bad body means the first page
	}
	return p
}

func (js *JetStream) streamNames(typ string, body []byte) []byte {
	p := parsePage(body)
	names := js.fsm.StreamNames(p.Subject)
	page := pageOf(names, p.Offset, namesPage)
	return okResponse(typ, map[string]any{"total": len(names), "offset": p.Offset, "limit": namesPage, "streams": page})
}

func (js *JetStream) streamList(typ string, body []byte) []byte {
	p := parsePage(body)
	var all []*StreamInfo
	for _, s := range js.fsm.Streams() {
		if p.Subject == "" || streamMatchesFilter(s.Config.Subjects, p.Subject) {
			all = append(all, js.decorate(s))
		}
	}
	page := pageOf(all, p.Offset, listPage)
	return okResponse(typ, map[string]any{"total": len(all), "offset": p.Offset, "limit": listPage, "streams": page, "missing": []string{}})
}

// streamMatchesFilter reports whether a stream with these subjects takes
// messages on filter (or overlaps it, for wildcard filters).
func streamMatchesFilter(subjects []string, filter string) bool {
	for _, s := range subjects {
		if SubjectMatches(s, filter) || SubjectMatches(filter, s) {
			return true
		}
	}
	return false
}

// pageOf returns items[offset:offset+limit], never nil (the CLI wants an
// array, not null).
func pageOf[T any](items []T, offset, limit int) []T {
	if offset < 0 || offset >= len(items) {
		return []T{}
	}
	return items[offset:min(offset+limit, len(items))]
}

func (js *JetStream) streamDelete(ctx context.Context, typ, name string) ([]byte, error) {
	res, err := js.propose(ctx, EncodeStreamDelete(name))
	if err != nil {
		return nil, err
	}
	if e, ok := res.(*APIError); ok && e != nil {
		return errorResponse(typ, e), nil
	}
	js.eng.mu.Lock()
	js.eng.removeStreamLocked(name)
	js.eng.mu.Unlock()
	return okResponse(typ, map[string]any{"success": true}), nil
}

func (js *JetStream) streamPurge(ctx context.Context, typ, name string, body []byte) ([]byte, error) {
	var req PurgeRequest
	if len(bytesTrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return errorResponse(typ, NewAPIError(400, 10025, "invalid JSON: "+err.Error())), nil
		}
	}
	res, err := js.propose(ctx, EncodeStreamPurge(name, req, time.Now()))
	if err != nil {
		return nil, err
	}
	switch r := res.(type) {
	case *APIError:
		return errorResponse(typ, r), nil
	case uint64:
		return okResponse(typ, map[string]any{"success": true, "purged": r}), nil
	default:
		return nil, fmt.Errorf("purge: unexpected result %T", res)
	}
}

func (js *JetStream) msgGet(typ, name string, body []byte) []byte {
	var req MsgGetRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse(typ, NewAPIError(400, 10025, "invalid JSON: "+err.Error()))
	}
	m, e := js.fsm.GetMsg(name, req)
	if e != nil {
		return errorResponse(typ, e)
	}
	type stored struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs,omitempty"` // base64 by encoding/json
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	}
	return okResponse(typ, map[string]any{"message": stored{m.Subject, m.Seq, m.Header, m.Data, m.Time.UTC()}})
}

func (js *JetStream) msgDelete(ctx context.Context, typ, name string, body []byte) ([]byte, error) {
	var req struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse(typ, NewAPIError(400, 10025, "invalid JSON: "+err.Error())), nil
	}
	res, err := js.propose(ctx, EncodeMsgDelete(name, req.Seq))
	if err != nil {
		return nil, err
	}
	if e, ok := res.(*APIError); ok && e != nil {
		return errorResponse(typ, e), nil
	}
	return okResponse(typ, map[string]any{"success": true}), nil
}

func bytesTrimSpace(b []byte) []byte { return []byte(strings.TrimSpace(string(b))) }
