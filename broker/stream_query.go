package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/storage"
)

// streamDef is one stream's definition as the FSM keeps it in memory. It
// is immutable: a change builds a new one.
type streamDef struct {
	name    string
	nameKey []byte
	cfg     StreamConfig // normalized
	created time.Time
	index   uint64 // Raft index of the create/update that wrote it
	buckets streamBuckets
}

func newStreamDef(cfg StreamConfig, created time.Time, index uint64) *streamDef {
	return &streamDef{
		name: cfg.Name, nameKey: []byte(cfg.Name), cfg: cfg, created: created, index: index,
		buckets: newStreamBuckets(cfg.Name),
	}
}

// catalog is the immutable set of stream definitions plus the capture
// index (which stream takes a subject). The FSM publishes it through an
// atomic pointer after each batch that changed a definition; it is built
// only from the store (NewFSM, Restore) or from the previous catalog and
// an applied command, so every replica has the same one at the same
// index.
type catalog struct {
	defs  map[string]*streamDef
	names []string // sorted
	root  *captureNode
}

func newCatalog(defs map[string]*streamDef) *catalog {
	c := &catalog{defs: defs, root: &captureNode{}}
	for name := range defs {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	for _, name := range c.names { // sorted, so the trie is built the same way everywhere
		d := defs[name]
		for _, s := range d.cfg.Subjects {
			c.root.insert(s, d)
		}
	}
	return c
}

// with returns a catalog in which d replaces (or adds) its stream.
func (c *catalog) with(d *streamDef) *catalog {
	defs := make(map[string]*streamDef, len(c.defs)+1)
	for k, v := range c.defs {
		defs[k] = v
	}
	defs[d.name] = d
	return newCatalog(defs)
}

// without returns a catalog without the named stream.
func (c *catalog) without(name string) *catalog {
	defs := make(map[string]*streamDef, len(c.defs))
	for k, v := range c.defs {
		if k != name {
			defs[k] = v
		}
	}
	return newCatalog(defs)
}

// overlaps reports whether any other stream's subjects overlap subjects.
func (c *catalog) overlaps(name string, subjects []string) bool {
	for _, other := range c.names {
		if other == name {
			continue
		}
		for _, a := range c.defs[other].cfg.Subjects {
			for _, b := range subjects {
				if SubjectsOverlap(a, b) {
					return true
				}
			}
		}
	}
	return false
}

// match returns the stream capturing a literal subject, or nil. Streams'
// subjects never overlap, so at most one can match. It does not allocate.
func (c *catalog) match(subject []byte) *streamDef {
	if c == nil || hasEmptyToken(subject) {
		return nil
	}
	return c.root.match(subject)
}

// captureNode is a token trie of stream subjects: literal children, a
// "*" child, and the streams whose pattern ends here exactly (full) or
// with a ">" after this token (tail).
type captureNode struct {
	lit  map[string]*captureNode
	star *captureNode
	full *streamDef
	tail *streamDef
}

func (n *captureNode) insert(pattern string, d *streamDef) {
	for {
		tok, rest, more := cut(pattern)
		if tok == tailTok && !more {
			n.tail = d
			return
		}
		var next *captureNode
		if tok == starTok {
			if n.star == nil {
				n.star = &captureNode{}
			}
			next = n.star
		} else {
			if n.lit == nil {
				n.lit = make(map[string]*captureNode)
			}
			if next = n.lit[tok]; next == nil {
				next = &captureNode{}
				n.lit[tok] = next
			}
		}
		if !more {
			next.full = d
			return
		}
		n, pattern = next, rest
	}
}

// match matches the remaining (non-empty) subject below n.
func (n *captureNode) match(subject []byte) *streamDef {
	tok, rest, more := cutBytes(subject)
	if c := n.lit[string(tok)]; c != nil {
		if d := c.below(rest, more); d != nil {
			return d
		}
	}
	if n.star != nil {
		if d := n.star.below(rest, more); d != nil {
			return d
		}
	}
	return n.tail // ">" takes this token and any after it
}

func (n *captureNode) below(rest []byte, more bool) *streamDef {
	if !more {
		return n.full
	}
	return n.match(rest)
}

func cut(s string) (tok, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == tokenSep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func cutBytes(s []byte) (tok, rest []byte, more bool) {
	if i := bytes.IndexByte(s, tokenSep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, nil, false
}

// loadCatalog reads every stream definition from the store.
func loadCatalog(tx *storage.Tx) (*catalog, error) {
	defs := make(map[string]*streamDef)
	err := tx.ForEach(streamsBucket, func(k, v []byte) error {
		index, created, cfgJSON, err := decodeDefRecord(v)
		if err != nil {
			return fmt.Errorf("stream %q: %w", k, err)
		}
		var cfg StreamConfig
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			return fmt.Errorf("stream %q config: %w", k, err)
		}
		defs[string(k)] = newStreamDef(cfg, created, index)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load streams: %w", err)
	}
	return newCatalog(defs), nil
}

// StreamForSubject reports which stream captures a literal publish
// subject. It is the hot path of every core publish on every node: it
// reads the in-memory capture index (rebuilt after each applied batch
// that changes a stream definition) and does not allocate.
func (f *FSM) StreamForSubject(subject []byte) (string, bool) {
	if d := f.cat.Load().match(subject); d != nil {
		return d.name, true
	}
	return "", false
}

// StreamNames returns the names of the streams, sorted; with a filter,
// only those whose subjects overlap it (the filter may have wildcards).
func (f *FSM) StreamNames(subjectFilter string) []string {
	cat := f.cat.Load()
	out := make([]string, 0, len(cat.names))
	for _, name := range cat.names {
		if subjectFilter == "" || slices.ContainsFunc(cat.defs[name].cfg.Subjects, func(s string) bool {
			return SubjectsOverlap(s, subjectFilter)
		}) {
			out = append(out, name)
		}
	}
	return out
}

// StreamInfo returns a stream's configuration and state from this node's
// replica (10059 if there is no such stream).
func (f *FSM) StreamInfo(name string) (*StreamInfo, *APIError) {
	var info *StreamInfo
	var apiErr *APIError
	if err := f.store.View(func(tx *storage.Tx) error {
		var err error
		info, apiErr, err = readStreamInfo(tx, f.cat.Load(), []byte(name))
		return err
	}); err != nil {
		return nil, ErrStreamGeneral("read stream: " + err.Error())
	}
	return info, apiErr
}

// Streams returns every stream's info, sorted by name.
func (f *FSM) Streams() []*StreamInfo {
	var out []*StreamInfo
	err := f.store.View(func(tx *storage.Tx) error {
		cat := f.cat.Load()
		return tx.ForEach(streamsBucket, func(k, _ []byte) error {
			info, _, err := readStreamInfo(tx, cat, k)
			if info != nil {
				out = append(out, info)
			}
			return err
		})
	})
	if err != nil {
		f.log.Error("read streams", zap.Error(err))
	}
	return out
}

// readStreamInfo reads a stream's definition and state in one read
// transaction, so the two are consistent even while a batch that changes
// the stream is being committed. The decoded config is taken from the
// catalog when it is the same version.
func readStreamInfo(tx *storage.Tx, cat *catalog, name []byte) (*StreamInfo, *APIError, error) {
	rec := tx.Get(streamsBucket, name)
	if rec == nil {
		return nil, ErrStreamNotFound(), nil
	}
	index, created, cfgJSON, err := decodeDefRecord(rec)
	if err != nil {
		return nil, nil, err
	}
	info := &StreamInfo{Created: created}
	if d := cat.defs[string(name)]; d != nil && d.index == index {
		info.Config = d.cfg.clone()
	} else if err := json.Unmarshal(cfgJSON, &info.Config); err != nil {
		return nil, nil, fmt.Errorf("stream %q config: %w", name, err)
	}
	st := tx.Get(streamStateBucket, name)
	if st == nil {
		return nil, nil, fmt.Errorf("stream %q has no state: %w", name, errCorruptRecord)
	}
	c, err := decodeStreamCounters(st)
	if err != nil {
		return nil, nil, err
	}
	info.State = c.state()
	info.State.Consumers = len(streamConsumerKeys(tx, string(name)))
	return info, nil, nil
}

// GetMsg reads one message from this node's replica: by sequence, the
// last on a subject (LastFor), or the first at or after Seq on a subject
// (NextFor). Subjects may be wildcards (scanning the stream). 10037 when
// there is no such message.
func (f *FSM) GetMsg(stream string, req MsgGetRequest) (*StoredMsg, *APIError) {
	switch {
	case req.LastFor != "" && (req.Seq > 0 || req.NextFor != ""):
		return nil, ErrBadRequest("last_by_subj can not be combined with seq or next_by_subj")
	case req.Seq == 0 && req.LastFor == "" && req.NextFor == "":
		return nil, ErrBadRequest("seq, last_by_subj or next_by_subj is required")
	case req.LastFor != "" && !ValidSubject(req.LastFor), req.NextFor != "" && !ValidSubject(req.NextFor):
		return nil, ErrBadRequest("invalid subject")
	}
	var msg *StoredMsg
	var apiErr *APIError
	err := f.store.View(func(tx *storage.Tx) error {
		if tx.Get(streamsBucket, []byte(stream)) == nil {
			apiErr = ErrStreamNotFound()
			return nil
		}
		b := newStreamBuckets(stream)
		r := msgReader{msgs: tx.Bucket(b.msgs), subjects: tx.Bucket(b.subjects)}
		var seq uint64
		switch {
		case req.LastFor != "":
			seq = r.lastFor(req.LastFor)
		case req.NextFor != "":
			seq = r.nextFor(req.NextFor, max(req.Seq, 1))
		default:
			seq = req.Seq
		}
		var err error
		if msg, err = r.load(seq); err != nil {
			return fmt.Errorf("stream %q: %w", stream, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, ErrStreamGeneral("read message: " + err.Error())
	case apiErr != nil:
		return nil, apiErr
	case msg == nil:
		return nil, ErrNoMessageFound()
	}
	return msg, nil
}

// msgReader reads one stream's buckets in a read transaction.
type msgReader struct {
	msgs, subjects *storage.Bucket
	// cur, when set, is shared by the copies of this reader: the stream
	// reads of one read transaction walk one cursor (see msgCursor).
	cur *msgCursor
}

// msgCursor remembers where the last read of the messages bucket stopped.
// A consumer delivers in sequence order, asking first for the next
// sequence (nextMatching) and then for the message (load): with the
// cursor that is one step to the next record instead of two searches from
// the root per message (the two searches were 27% of the leader's CPU
// serving an ordered consumer). Only for read transactions: a write moves
// records under the cursor.
type msgCursor struct {
	b    *storage.Bucket
	c    *storage.Cursor
	k, v []byte // the record the cursor is at; k nil: none
}

// cursor returns the shared cursor, or a fresh one for a reader without.
func (r msgReader) cursor() *msgCursor {
	if r.cur != nil {
		return r.cur
	}
	return &msgCursor{b: r.msgs}
}

// seek moves to the first record at or after sequence from: no move when
// the cursor is there already, one step when it is just before.
func (mc *msgCursor) seek(from uint64) (k, v []byte) {
	switch {
	case mc.k != nil && seqOf(mc.k) == from:
	case mc.k != nil && seqOf(mc.k)+1 == from:
		mc.k, mc.v = mc.c.Next()
	default:
		if mc.c == nil {
			mc.c = mc.b.Cursor()
		}
		mc.k, mc.v = mc.c.Seek(seqKey(nil, from))
	}
	return mc.k, mc.v
}

// next steps to the following record.
func (mc *msgCursor) next() (k, v []byte) {
	mc.k, mc.v = mc.c.Next()
	return mc.k, mc.v
}

// load returns a copy of the message at seq, nil if none.
func (r msgReader) load(seq uint64) (*StoredMsg, error) {
	if seq == 0 {
		return nil, nil
	}
	var rec []byte
	if mc := r.cur; mc != nil && mc.k != nil && seqOf(mc.k) == seq {
		rec = mc.v
	} else {
		rec = r.msgs.Get(seqKey(nil, seq))
	}
	if rec == nil {
		return nil, nil
	}
	ts, m, err := decodeMsgRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", seq, err)
	}
	out := &StoredMsg{Subject: string(m.subject), Seq: seq, Time: timeOf(ts)}
	if len(m.header) > 0 {
		out.Header = bytes.Clone(m.header)
	}
	if len(m.data) > 0 {
		out.Data = bytes.Clone(m.data)
	}
	return out, nil
}

// lastFor returns the last sequence stored on subjects matching filter.
func (r msgReader) lastFor(filter string) uint64 {
	if isLiteral(filter) {
		_, _, last, _ := decodeSubjRecord(r.subjects.Get([]byte(filter)))
		return last
	}
	var last uint64
	c := r.subjects.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, _, l, ok := decodeSubjRecord(v); ok && SubjectMatches(filter, string(k)) {
			last = max(last, l)
		}
	}
	return last
}

// nextFor returns the first sequence at or after from stored on subjects
// matching filter. A literal subject's first and last messages come from
// its record; in between (and for wildcards) the messages are scanned.
func (r msgReader) nextFor(filter string, from uint64) uint64 {
	end := ^uint64(0)
	if isLiteral(filter) {
		_, first, last, ok := decodeSubjRecord(r.subjects.Get([]byte(filter)))
		switch {
		case !ok || from > last:
			return 0
		case from <= first:
			return first
		}
		end = last
	}
	mc := r.cursor()
	for k, v := mc.seek(from); k != nil && seqOf(k) <= end; k, v = mc.next() {
		if _, m, err := decodeMsgRecord(v); err == nil && SubjectMatches(filter, string(m.subject)) {
			return seqOf(k)
		}
	}
	return 0
}
