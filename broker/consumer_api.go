package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

// The consumer operations of the JetStream API, executed on the leader
// (execAPI). Changes go through Raft; reads come from the engine's live
// state, which on the leader is ahead of (and includes) the replicated
// one.

func (js *JetStream) consumerCreate(ctx context.Context, typ, op, arg string, body []byte) ([]byte, error) {
	req, e := ParseConsumerCreate(op, arg, body)
	if e != nil {
		return errorResponse(typ, e), nil
	}
	def := js.fsm.cat.Load().defs[req.Stream]
	if def == nil {
		return errorResponse(typ, ErrStreamNotFound()), nil
	}
	cfg := req.Config
	if e := cfg.Normalize(&def.cfg); e != nil {
		return errorResponse(typ, e), nil
	}
	cfgJSON, err := json.Marshal(&cfg)
	if err != nil {
		return nil, fmt.Errorf("encode consumer config: %w", err)
	}
	if !js.eng.waitLeading() {
		return nil, cluster.ErrNotLeader
	}
	res, err := js.propose(ctx, EncodeConsumerCreate(time.Now(), req.Stream, req.Name, req.Action, cfgJSON))
	if err != nil {
		return nil, err
	}
	switch r := res.(type) {
	case *APIError:
		return errorResponse(typ, r), nil
	case *consumerRecord:
		info, e := js.eng.upsert(r)
		if e != nil {
			return errorResponse(typ, e), nil
		}
		return okResponse(typ, info), nil
	default:
		return nil, fmt.Errorf("consumer create: unexpected result %T", res)
	}
}

// splitConsumerArg splits "<stream>.<consumer>".
func splitConsumerArg(arg string) (stream, name string, ok bool) {
	stream, name, ok = strings.Cut(arg, ".")
	return stream, name, ok && stream != "" && name != "" && !strings.Contains(name, ".")
}

func (js *JetStream) consumerInfo(typ, arg string) ([]byte, error) {
	stream, name, ok := splitConsumerArg(arg)
	if !ok {
		return errorResponse(typ, ErrBadRequest("bad consumer subject")), nil
	}
	if js.fsm.cat.Load().defs[stream] == nil {
		return errorResponse(typ, ErrStreamNotFound()), nil
	}
	if !js.eng.waitLeading() {
		return nil, cluster.ErrNotLeader
	}
	info, e := js.eng.info(stream, name)
	if e != nil {
		return errorResponse(typ, e), nil
	}
	return okResponse(typ, info), nil
}

func (js *JetStream) consumerDelete(ctx context.Context, typ, arg string) ([]byte, error) {
	stream, name, ok := splitConsumerArg(arg)
	if !ok {
		return errorResponse(typ, ErrBadRequest("bad consumer subject")), nil
	}
	if !js.eng.waitLeading() {
		return nil, cluster.ErrNotLeader
	}
	res, err := js.propose(ctx, EncodeConsumerDelete(stream, name))
	if err != nil {
		return nil, err
	}
	if e, ok := res.(*APIError); ok && e != nil {
		return errorResponse(typ, e), nil
	}
	js.eng.mu.Lock()
	js.eng.removeLocked(stream, name)
	js.eng.mu.Unlock()
	return okResponse(typ, map[string]any{"success": true}), nil
}

func (js *JetStream) consumerNames(typ, stream string, body []byte, list bool) ([]byte, error) {
	if js.fsm.cat.Load().defs[stream] == nil {
		return errorResponse(typ, ErrStreamNotFound()), nil
	}
	if !js.eng.waitLeading() {
		return nil, cluster.ErrNotLeader
	}
	p := parsePage(body)
	if !list {
		names := js.eng.names(stream)
		return okResponse(typ, map[string]any{"total": len(names), "offset": p.Offset, "limit": namesPage, "consumers": pageOf(names, p.Offset, namesPage)}), nil
	}
	infos := js.eng.infos(stream)
	return okResponse(typ, map[string]any{"total": len(infos), "offset": p.Offset, "limit": listPage, "consumers": pageOf(infos, p.Offset, listPage)}), nil
}

// consumerNext registers a pull request. Everything it answers goes
// straight to the request's inbox, so the API response is empty.
func (js *JetStream) consumerNext(arg, reply string, body []byte) ([]byte, error) {
	stream, name, ok := splitConsumerArg(arg)
	if !ok || reply == "" {
		return nil, nil
	}
	if !js.eng.waitLeading() {
		return nil, cluster.ErrNotLeader
	}
	e := js.eng
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.consumer(stream, name)
	if c == nil {
		// nats-server has no responder for a consumer that does not
		// exist: clients expect no-responders (ordered consumers then
		// recreate theirs).
		js.sendStatus(reply, StatusNoRespondersFor(apiPrefix+"CONSUMER.MSG.NEXT."+arg))
		return nil, nil
	}
	e.pullLocked(c, reply, body, time.Now())
	return nil, nil
}

// pullLocked validates and queues a pull request, then serves the
// consumer at once.
func (e *engine) pullLocked(c *consumer, reply string, body []byte, now time.Time) {
	if c.cfg.IsPush() {
		e.js.sendStatus(reply, StatusConflict(StatusTextPushBased, 0, 0, false))
		return
	}
	pr, bad := ParsePullRequest(body)
	if bad != "" {
		e.js.sendStatus(reply, StatusBadRequest(bad))
		return
	}
	if text := CheckPullLimits(pr, c.cfg.MaxRequestBatch, c.cfg.MaxRequestExpires, c.cfg.MaxRequestMaxBytes); text != "" {
		e.js.sendStatus(reply, StatusConflict(text, 0, 0, false))
		return
	}
	if c.cfg.MaxWaiting > 0 && len(c.waiting) >= c.cfg.MaxWaiting {
		if pr.Heartbeat == 0 { // with heartbeats the client notices by itself
			e.js.sendStatus(reply, StatusConflict(StatusTextMaxWaiting, 0, 0, false))
		}
		return
	}
	req := &pullReq{reply: reply, batch: max(pr.Batch, 1), maxBytes: pr.MaxBytes, bytesLeft: pr.MaxBytes,
		noWait: pr.NoWait, hb: pr.Heartbeat, lastSent: now}
	if pr.Expires > 0 {
		req.expires = now.Add(pr.Expires)
	}
	c.waiting = append(c.waiting, req)
	c.active = now
	e.serveOneLocked(c, now)
}

// upsert makes the engine's view of a consumer match a committed create
// or update, and returns its info.
func (e *engine) upsert(rec *consumerRecord) (*ConsumerInfo, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return nil, ErrClusterUnavailable()
	}
	c := e.consumer(rec.stream, rec.name)
	switch {
	case c != nil && c.gen == rec.gen:
		c.cfg = rec.cfg // an update, or the same config again
	default:
		c = newConsumer(rec, nil, nil, time.Now())
		if rec.lpsBoundary > 0 {
			_ = e.js.fsm.store.View(func(tx *storage.Tx) error {
				e.initLPS(tx, c)
				return nil
			})
		}
		e.cons[c.key()] = c
	}
	return e.infoLocked(c), nil
}

func (e *engine) info(stream, name string) (*ConsumerInfo, *APIError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.consumer(stream, name)
	if c == nil {
		return nil, ErrConsumerNotFound()
	}
	return e.infoLocked(c), nil
}

func (e *engine) names(stream string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.streamConsumers(stream)
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

func (e *engine) infos(stream string) []*ConsumerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.streamConsumers(stream)
	out := make([]*ConsumerInfo, len(cs))
	for i, c := range cs {
		out[i] = e.infoLocked(c)
	}
	return out
}

func (e *engine) infoLocked(c *consumer) *ConsumerInfo {
	var np uint64
	_ = e.js.fsm.store.View(func(tx *storage.Tx) error {
		if r, sc, ok, err := streamReader(tx, c.stream); err == nil && ok {
			np = c.numPending(r, &sc)
		}
		return nil
	})
	floor := c.ackFloorNow()
	leader, _ := e.js.raft.Leader()
	info := &ConsumerInfo{
		Stream: c.stream, Name: c.name, Created: c.created.UTC(), Config: c.cfg,
		Delivered:      SequenceInfo{Consumer: c.delivered.cons, Stream: c.delivered.stream},
		AckFloor:       SequenceInfo{Consumer: floor.cons, Stream: floor.stream},
		NumAckPending:  len(c.pending),
		NumRedelivered: c.redelivered(),
		NumWaiting:     len(c.waiting),
		NumPending:     np,
		Cluster:        &ClusterInfo{Leader: leader},
		TimeStamp:      time.Now().UTC(),
	}
	if c.cfg.IsPush() {
		info.PushBound = e.js.b.HasInterest([]byte(c.cfg.DeliverSubject))
	}
	return info
}

// sendStatus sends a status message (header block only) to an inbox.
func (js *JetStream) sendStatus(reply string, hdr []byte) {
	if reply == "" {
		return
	}
	js.b.publishCore(&Message{Subject: []byte(reply), Header: hdr})
}
