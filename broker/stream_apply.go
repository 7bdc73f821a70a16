package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/storage"
)

// applyCtx is the state of one ApplyBatch: its transaction, the catalog
// as changed by the batch so far, the streams it touched (written back at
// the end), value buffers and key scratch space. The FSM keeps one and
// reuses it, since batches are applied one at a time.
type applyCtx struct {
	tx          *storage.Tx
	cat         *catalog
	catChanged  bool
	defsBucket  *storage.Bucket
	stateBucket *storage.Bucket
	streams     map[string]*streamTx
	order       []*streamTx
	arena       arena

	kseq [8]byte // bbolt copies keys, so key scratch is reused
	kstr []byte
	msgs []pubMsg // decoded publish batch
	cons consumerApply
}

func (ac *applyCtx) begin(tx *storage.Tx, cat *catalog) error {
	ac.tx, ac.cat, ac.catChanged = tx, cat, false
	if ac.streams == nil {
		ac.streams = make(map[string]*streamTx)
	}
	var err error
	if ac.defsBucket, err = tx.CreateBucket(streamsBucket); err != nil {
		return err
	}
	ac.stateBucket, err = tx.CreateBucket(streamStateBucket)
	return err
}

// flush writes back every stream the batch touched, in the order they
// were first touched.
func (ac *applyCtx) flush() error {
	// Consumers first: their acks may remove messages from streams.
	if err := ac.flushConsumers(); err != nil {
		return err
	}
	for _, s := range ac.order {
		if err := s.flush(); err != nil {
			return fmt.Errorf("flush stream %q: %w", s.def.name, err)
		}
	}
	return nil
}

// end drops the batch's references; after commit the arena is reusable.
func (ac *applyCtx) end() {
	ac.tx, ac.cat, ac.defsBucket, ac.stateBucket = nil, nil, nil, nil
	clear(ac.streams)
	clear(ac.order)
	ac.order = ac.order[:0]
	clear(ac.msgs)
	ac.msgs = ac.msgs[:0]
	ac.cons.end()
	ac.arena.reset()
}

// stream returns the batch's working state of a stream, loading it on
// first use.
func (ac *applyCtx) stream(def *streamDef) (*streamTx, error) {
	if s := ac.streams[def.name]; s != nil {
		s.def = def
		return s, nil
	}
	s, err := loadStreamTx(ac, def)
	if err != nil {
		return nil, err
	}
	ac.streams[def.name] = s
	ac.order = append(ac.order, s)
	return s, nil
}

func (ac *applyCtx) setCatalog(c *catalog) { ac.cat, ac.catChanged = c, true }

func (ac *applyCtx) seqKey(seq uint64) []byte { return seqKey(ac.kseq[:0], seq) }

func (ac *applyCtx) key(s string) []byte {
	ac.kstr = append(ac.kstr[:0], s...)
	return ac.kstr
}

// mustDecode panics on an entry whose body does not decode: it is in the
// Raft log, and skipping it would let this replica diverge.
func mustDecode(index uint64, err error) {
	if err != nil {
		panic(fmt.Sprintf("fsm: undecodable entry at index %d: %v", index, err))
	}
}

// rejected logs a command's business rejection at debug (on followers
// nobody else sees it) and returns it as the result.
func (f *FSM) rejected(index uint64, t CommandType, stream string, e *APIError) *APIError {
	if ce := f.log.Check(zap.DebugLevel, "stream command rejected"); ce != nil {
		ce.Write(zap.Uint64("raft_index", index), zap.Stringer("cmd_type", t), zap.String("stream", stream),
			zap.Uint16("err_code", e.ErrCode), zap.String("reason", e.Description))
	}
	return e
}

// parseConfig decodes and normalizes a proposed configuration; a bad one
// is a rejection, never a decode failure.
func parseConfig(raw []byte) (StreamConfig, *APIError) {
	var cfg StreamConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, ErrInvalidJSON(err)
	}
	if e := cfg.Normalize(); e != nil {
		return cfg, e
	}
	return cfg, nil
}

func (f *FSM) applyStreamCreate(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeStreamConfigCmd(body)
	mustDecode(index, err)
	cfg, e := parseConfig(cmd.config)
	if e != nil {
		return f.rejected(index, CmdStreamCreate, cfg.Name, e), nil
	}
	if old := ac.cat.defs[cfg.Name]; old != nil {
		if !old.cfg.Equal(cfg) {
			return f.rejected(index, CmdStreamCreate, cfg.Name, ErrStreamNameInUse()), nil
		}
		s, err := ac.stream(old) // idempotent create: the current info
		if err != nil {
			return nil, err
		}
		return s.info(), nil
	}
	if cfg.Sealed {
		return f.rejected(index, CmdStreamCreate, cfg.Name, ErrStreamInvalidConfig("stream configuration for create can not be sealed")), nil
	}
	if ac.cat.overlaps(cfg.Name, cfg.Subjects) {
		return f.rejected(index, CmdStreamCreate, cfg.Name, ErrSubjectOverlap()), nil
	}
	def := newStreamDef(cfg, cmd.now, index)
	if err := ac.writeDef(def); err != nil {
		return nil, err
	}
	var c streamCounters
	if cfg.FirstSeq > 0 {
		c.first, c.last = cfg.FirstSeq, cfg.FirstSeq-1
	}
	if err := ac.stateBucket.Put(def.nameKey, c.encode(nil)); err != nil {
		return nil, err
	}
	ac.setCatalog(ac.cat.with(def))
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	info := s.info()
	info.DidCreate = true
	return info, nil
}

func (ac *applyCtx) writeDef(def *streamDef) error {
	cfgJSON, err := json.Marshal(def.cfg)
	if err != nil {
		return fmt.Errorf("encode stream config: %w", err)
	}
	return ac.defsBucket.Put(def.nameKey, encodeDefRecord(def.index, def.created, cfgJSON))
}

func (s *streamTx) info() *StreamInfo {
	return &StreamInfo{Config: s.def.cfg.clone(), Created: s.def.created, State: s.c.state()}
}

func (f *FSM) applyStreamUpdate(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeStreamConfigCmd(body)
	mustDecode(index, err)
	cfg, e := parseConfig(cmd.config)
	if e != nil {
		return f.rejected(index, CmdStreamUpdate, cfg.Name, e), nil
	}
	old := ac.cat.defs[cfg.Name]
	if old == nil {
		return f.rejected(index, CmdStreamUpdate, cfg.Name, ErrStreamNotFound()), nil
	}
	if e := checkUpdate(old.cfg, &cfg); e != nil {
		return f.rejected(index, CmdStreamUpdate, cfg.Name, e), nil
	}
	if ac.cat.overlaps(cfg.Name, cfg.Subjects) {
		return f.rejected(index, CmdStreamUpdate, cfg.Name, ErrSubjectOverlap()), nil
	}
	def := newStreamDef(cfg, old.created, index)
	if err := ac.writeDef(def); err != nil {
		return nil, err
	}
	ac.setCatalog(ac.cat.with(def))
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	// Tighter limits apply at once, evicting the oldest messages whatever
	// the discard policy (as nats-server does).
	if err := s.enforceAll(unixNano(cmd.now)); err != nil {
		return nil, err
	}
	return s.info(), nil
}

func (f *FSM) applyStreamDelete(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeStreamDeleteCmd(body)
	mustDecode(index, err)
	def := ac.cat.defs[cmd.name]
	if def == nil {
		return f.rejected(index, CmdStreamDelete, cmd.name, ErrStreamNotFound()), nil
	}
	if err := ac.deleteConsumersOf(def.name); err != nil {
		return nil, err
	}
	for _, b := range def.buckets.all() {
		if err := ac.tx.DeleteBucket(b); err != nil {
			return nil, err
		}
	}
	if err := ac.defsBucket.Delete(def.nameKey); err != nil {
		return nil, err
	}
	if err := ac.stateBucket.Delete(def.nameKey); err != nil {
		return nil, err
	}
	if s := ac.streams[def.name]; s != nil {
		s.deleted = true
		delete(ac.streams, def.name)
	}
	ac.setCatalog(ac.cat.without(def.name))
	return nil, nil
}

func (f *FSM) applyStreamPurge(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeStreamPurgeCmd(body)
	mustDecode(index, err)
	def := ac.cat.defs[cmd.name]
	var e *APIError
	switch {
	case def == nil:
		e = ErrStreamNotFound()
	case def.cfg.Sealed:
		e = ErrStreamSealed()
	case def.cfg.DenyPurge:
		e = ErrPurgeFailed("stream purge not permitted")
	case cmd.req.Seq > 0 && cmd.req.Keep > 0:
		e = ErrBadRequest("sequence and keep can not both be set")
	case cmd.req.Subject != "" && !ValidSubject(cmd.req.Subject):
		e = ErrBadRequest("invalid purge filter subject")
	}
	if e != nil {
		return f.rejected(index, CmdStreamPurge, cmd.name, e), nil
	}
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	n, err := s.purge(cmd.req)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (f *FSM) applyMsgDelete(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeMsgDeleteCmd(body)
	mustDecode(index, err)
	def := ac.cat.defs[cmd.name]
	var e *APIError
	switch {
	case def == nil:
		e = ErrStreamNotFound()
	case def.cfg.Sealed:
		e = ErrStreamSealed()
	case def.cfg.DenyDelete:
		e = ErrMsgDeleteFailed("message delete not permitted")
	}
	if e != nil {
		return f.rejected(index, CmdMsgDelete, cmd.name, e), nil
	}
	s, err := ac.stream(def)
	if err != nil {
		return nil, err
	}
	ok, err := s.remove(cmd.seq)
	if err != nil {
		return nil, err
	}
	if !ok {
		return f.rejected(index, CmdMsgDelete, cmd.name, ErrSequenceNotFound(cmd.seq)), nil
	}
	return nil, nil
}

func (f *FSM) applyExpire(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodeExpireCmd(body)
	mustDecode(index, err)
	now := unixNano(cmd.now)
	for _, name := range ac.cat.names { // sorted: the same writes in the same order everywhere
		def := ac.cat.defs[name]
		s, err := ac.stream(def)
		if err != nil {
			return nil, err
		}
		if err := s.expireAge(now); err != nil {
			return nil, err
		}
		if err := s.pruneMsgIDs(now - int64(def.cfg.Duplicates)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (f *FSM) applyPublishBatch(ac *applyCtx, index uint64, body []byte) (any, error) {
	cmd, err := decodePublishBatchCmd(body, ac.msgs)
	mustDecode(index, err)
	ac.msgs = cmd.msgs
	now := unixNano(cmd.now)
	acks := make([]PubAck, len(cmd.msgs))
	for i := range cmd.msgs {
		if acks[i], err = f.publish(ac, now, &cmd.msgs[i]); err != nil {
			return nil, err
		}
		if e := acks[i].Error; e != nil {
			f.rejected(index, CmdPublishBatch, acks[i].Stream, e)
		}
	}
	return acks, nil
}

// publish applies one message of a batch (reference §2.6). The checks run
// in this order: capturing stream, sealed, header and message size,
// Nats-Expected-Stream, Nats-Msg-Id dedup, the expected last subject
// sequence, last sequence and last msg id, the rollup header, age
// expiry, discard-new limits; then the message is stored, the rollup done
// and discard-old limits enforced. Dedup comes before the last-sequence
// expectations (nats-server checks it after them) so that the retry of a
// conditional publish that was stored gets its original ack, not a
// "wrong last sequence".
func (f *FSM) publish(ac *applyCtx, now int64, m *pubMsg) (PubAck, error) {
	def := ac.cat.match(m.subject)
	if def == nil {
		return PubAck{Error: ErrNoStreamMatch()}, nil
	}
	ack := PubAck{Stream: def.name}
	cfg := &def.cfg
	switch {
	case cfg.Sealed:
		ack.Error = ErrStreamSealed()
	case len(m.subject) > maxStoredKeyLen:
		ack.Error = ErrBadRequest("subject is longer than " + strconv.Itoa(maxStoredKeyLen) + " bytes")
	case len(m.header) > maxHeaderLen:
		ack.Error = ErrHeaderTooBig()
	case cfg.MaxMsgSize >= 0 && len(m.header)+len(m.data) > int(cfg.MaxMsgSize):
		ack.Error = ErrMessageTooBig()
	}
	if ack.Error != nil {
		return ack, nil
	}
	h := parsePubHeaders(m.header)
	if len(h.expStream) > 0 && string(h.expStream) != def.name {
		ack.Error = ErrStreamNotMatch()
		return ack, nil
	}
	if len(h.msgID) > maxStoredKeyLen {
		ack.Error = ErrBadRequest("Nats-Msg-Id is longer than " + strconv.Itoa(maxStoredKeyLen) + " bytes")
		return ack, nil
	}
	s, err := ac.stream(def)
	if err != nil {
		return ack, err
	}
	if len(h.msgID) > 0 {
		if seq, dup := s.duplicateOf(h.msgID, now); dup {
			ack.Seq, ack.Duplicate = seq, true
			return ack, nil
		}
	}
	if ack.Error, err = s.checkExpectations(&h, m.subject); ack.Error != nil || err != nil {
		return ack, err
	}
	if ack, err = s.storeChecked(ack, now, m, &h); err != nil || ack.Error != nil || ack.Duplicate {
		return ack, err
	}
	return ack, ac.retainNew(s, ack.Seq, m.subject)
}

// checkExpectations checks the Nats-Expected-Last-* headers; the error is
// a storage failure.
func (s *streamTx) checkExpectations(h *pubHeaders, subject []byte) (*APIError, error) {
	if !h.hasExpectations {
		return nil, nil
	}
	if len(h.expLastSubjSeq) > 0 {
		on := subject
		if len(h.expLastSubjOn) > 0 {
			on = h.expLastSubjOn
			if !ValidSubject(string(on)) {
				return ErrBadRequest("invalid " + hdrExpectedLastSubjOn), nil
			}
		}
		last, err := s.lastSeqOn(on)
		if err != nil {
			return nil, err
		}
		if want, ok := parseSeq(h.expLastSubjSeq); !ok || want != last {
			return ErrWrongLastSequence(last), nil
		}
	} else if len(h.expLastSubjOn) > 0 {
		return ErrExpectedSubjectNoSeq(), nil
	}
	if len(h.expLastSeq) > 0 {
		if want, ok := parseSeq(h.expLastSeq); !ok || want != s.c.last {
			return ErrWrongLastSequence(s.c.last), nil
		}
	}
	if len(h.expLastMsgID) > 0 && !bytes.Equal(h.expLastMsgID, s.c.lastMsgID) {
		return ErrWrongLastMsgID(string(s.c.lastMsgID)), nil
	}
	return nil, nil
}

// lastSeqOn returns the last sequence stored on a valid subject, or on any
// subject matching a wildcard filter (scanning the subject index).
func (s *streamTx) lastSeqOn(subject []byte) (uint64, error) {
	if isLiteral(string(subject)) {
		return s.entry(subject).last, nil
	}
	if err := s.flushSubjects(); err != nil {
		return 0, err
	}
	var last uint64
	c := s.subjects.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, _, l, ok := decodeSubjRecord(v); ok && SubjectMatches(string(subject), string(k)) {
			last = max(last, l)
		}
	}
	return last, nil
}

// storeChecked runs the rollup and limit checks and stores the message.
func (s *streamTx) storeChecked(ack PubAck, now int64, m *pubMsg, h *pubHeaders) (PubAck, error) {
	cfg := &s.def.cfg
	var rollupSub, rollupAllMsgs bool
	if len(h.rollup) > 0 {
		if !cfg.AllowRollup || cfg.DenyPurge {
			ack.Error = ErrRollupFailed("rollup not permitted")
			return ack, nil
		}
		switch string(h.rollup) {
		case rollupSubject:
			rollupSub = true
		case rollupAll:
			rollupAllMsgs = true
		default:
			ack.Error = ErrRollupFailed("rollup value invalid: " + strconv.Quote(string(h.rollup)))
			return ack, nil
		}
	}
	// Message times never go backwards within a stream, even across a
	// leader change with a clock behind: age expiry and dedup pruning walk
	// messages in sequence order and rely on it.
	ts := max(now, s.c.lastTime)
	if err := s.expireAge(ts); err != nil {
		return ack, err
	}
	if e, err := s.checkDiscardNew(m, rollupSub, rollupAllMsgs); e != nil || err != nil {
		ack.Error = e
		return ack, err
	}
	var err error
	switch {
	case rollupAllMsgs:
		_, err = s.purgeAll()
	case rollupSub:
		_, err = s.purgeSubject(m.subject, 0, 0)
	}
	if err != nil {
		return ack, err
	}
	if ack.Seq, err = s.store(m, ts, h.msgID); err != nil {
		return ack, err
	}
	return ack, s.enforceDiscardOld(m.subject)
}

// checkDiscardNew refuses a message that does not fit under discard new
// (after its roll-up, which would free room), and one larger than
// max_bytes under any policy (it could never be stored).
func (s *streamTx) checkDiscardNew(m *pubMsg, rollupSub, rollupAllMsgs bool) (*APIError, error) {
	cfg := &s.def.cfg
	size := msgSize(m)
	if cfg.MaxBytes > 0 && size > uint64(cfg.MaxBytes) {
		return ErrStoreFailed(reasonMaxBytes), nil
	}
	if cfg.Discard != DiscardNew {
		return nil, nil
	}
	msgs, used := s.c.msgs, s.c.bytes
	switch {
	case rollupAllMsgs:
		msgs, used = 0, 0
	case rollupSub:
		n, b, err := s.subjectUsage(m.subject)
		if err != nil {
			return nil, err
		}
		msgs, used = msgs-n, used-b
	}
	switch {
	case cfg.MaxMsgs > 0 && msgs+1 > uint64(cfg.MaxMsgs):
		return ErrStoreFailed(reasonMaxMsgs), nil
	case cfg.MaxBytes > 0 && used+size > uint64(cfg.MaxBytes):
		return ErrStoreFailed(reasonMaxBytes), nil
	case cfg.DiscardNewPer && cfg.MaxMsgsPerSubject > 0 && !rollupSub && !rollupAllMsgs &&
		s.entry(m.subject).count+1 > uint64(cfg.MaxMsgsPerSubject):
		return ErrStoreFailed(reasonMaxPerSubject), nil
	}
	return nil, nil
}

// subjectUsage returns the number and size of a subject's messages.
func (s *streamTx) subjectUsage(subject []byte) (n, size uint64, err error) {
	e := s.entry(subject)
	for seq := e.first; n < e.count; seq, _ = s.next(e, seq) {
		_, m, err := decodeMsgRecord(s.msgs.Get(s.ac.seqKey(seq)))
		if err != nil {
			return 0, 0, fmt.Errorf("stream %q seq %d: %w", s.def.name, seq, err)
		}
		n, size = n+1, size+msgSize(&m)
	}
	return n, size, nil
}

// enforceDiscardOld evicts after a store: the subject's oldest messages
// over max_msgs_per_subject, then the stream's oldest over max_msgs and
// max_bytes. (Under discard new the stream limits were checked before.)
func (s *streamTx) enforceDiscardOld(subject []byte) error {
	cfg := &s.def.cfg
	if cfg.MaxMsgsPerSubject > 0 {
		for e := s.entry(subject); e.count > uint64(cfg.MaxMsgsPerSubject); {
			if err := s.removeExisting(e.first); err != nil {
				return err
			}
		}
	}
	return s.enforceStreamLimits()
}

func (s *streamTx) enforceStreamLimits() error {
	cfg := &s.def.cfg
	for cfg.MaxMsgs > 0 && s.c.msgs > uint64(cfg.MaxMsgs) {
		if err := s.removeHead(); err != nil {
			return err
		}
	}
	for cfg.MaxBytes > 0 && s.c.bytes > uint64(cfg.MaxBytes) {
		if err := s.removeHead(); err != nil {
			return err
		}
	}
	return nil
}

// enforceAll applies every limit after a configuration change: age as of
// now, then per subject (scanning the subject index), msgs and bytes.
func (s *streamTx) enforceAll(now int64) error {
	if err := s.expireAge(now); err != nil {
		return err
	}
	if limit := s.def.cfg.MaxMsgsPerSubject; limit > 0 {
		if err := s.flushSubjects(); err != nil {
			return err
		}
		var over [][]byte
		c := s.subjects.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n, _, _, ok := decodeSubjRecord(v); ok && n > uint64(limit) {
				over = append(over, bytes.Clone(k))
			}
		}
		for _, subj := range over {
			if err := s.enforceDiscardOld(subj); err != nil {
				return err
			}
		}
	}
	return s.enforceStreamLimits()
}

func (s *streamTx) removeExisting(seq uint64) error {
	ok, err := s.remove(seq)
	if err == nil && !ok {
		err = fmt.Errorf("stream %q: indexed seq %d not stored: %w", s.def.name, seq, errCorruptRecord)
	}
	return err
}

// expireAge removes the messages at least max_age old as of now.
func (s *streamTx) expireAge(now int64) error {
	maxAge := int64(s.def.cfg.MaxAge)
	if maxAge <= 0 {
		return nil
	}
	for s.c.msgs > 0 && s.c.firstTime <= now-maxAge {
		if err := s.removeHead(); err != nil {
			return err
		}
	}
	return nil
}

// purge implements STREAM.PURGE and returns the number removed.
func (s *streamTx) purge(req PurgeRequest) (uint64, error) {
	if req.Subject == "" || s.filterCoversStream(req.Subject) {
		return s.purgeStream(req.Seq, req.Keep)
	}
	if isLiteral(req.Subject) {
		return s.purgeSubject([]byte(req.Subject), req.Seq, req.Keep)
	}
	return s.purgeFiltered(req.Subject, req.Seq, req.Keep)
}

// filterCoversStream reports whether filter matches every subject the
// stream can hold.
func (s *streamTx) filterCoversStream(filter string) bool {
	for _, p := range s.def.cfg.Subjects {
		if !subjectIsSubset(p, filter) {
			return false
		}
	}
	return true
}

// purgeStream removes everything (seq 0, keep 0), everything below seq,
// or all but the newest keep messages. Purging up to a sequence past the
// end moves the stream's sequence there (nats-server's compact).
func (s *streamTx) purgeStream(seq, keep uint64) (uint64, error) {
	switch {
	case keep > 0:
		if s.c.msgs <= keep {
			return 0, nil
		}
		n := s.c.msgs - keep
		for range n {
			if err := s.removeHead(); err != nil {
				return 0, err
			}
		}
		return n, nil
	case seq > 0 && seq <= s.c.last:
		var n uint64
		for s.c.msgs > 0 && s.c.first < seq {
			if err := s.removeHead(); err != nil {
				return 0, err
			}
			n++
		}
		return n, nil
	default:
		n, err := s.purgeAll()
		if err == nil && seq > s.c.last+1 {
			s.c.first, s.c.last = seq, seq-1
		}
		return n, err
	}
}

// purgeSubject removes a literal subject's messages: all, those below
// seq, or all but the newest keep.
func (s *streamTx) purgeSubject(subject []byte, seq, keep uint64) (uint64, error) {
	e := s.entry(subject)
	limit := e.count
	if keep > 0 {
		if e.count <= keep {
			return 0, nil
		}
		limit = e.count - keep
	}
	var n uint64
	for ; n < limit && e.count > 0 && (seq == 0 || e.first < seq); n++ {
		if err := s.removeExisting(e.first); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// purgeFiltered removes messages on subjects matching a wildcard filter
// by scanning the stream from its first message.
func (s *streamTx) purgeFiltered(filter string, seq, keep uint64) (uint64, error) {
	if err := s.flushSubjects(); err != nil {
		return 0, err
	}
	var total uint64
	c := s.subjects.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if n, _, _, ok := decodeSubjRecord(v); ok && SubjectMatches(filter, string(k)) {
			total += n
		}
	}
	limit := total
	if keep > 0 {
		if total <= keep {
			return 0, nil
		}
		limit = total - keep
	}
	var n uint64
	mc := s.msgs.Cursor()
	for next := s.c.first; n < limit; {
		// Seek again after every removal: writes invalidate the cursor.
		k, v := mc.Seek(s.ac.seqKey(next))
		if k == nil {
			break
		}
		cur := seqOf(k)
		if seq > 0 && cur >= seq {
			break
		}
		next = cur + 1
		_, m, err := decodeMsgRecord(v)
		if err != nil {
			return 0, fmt.Errorf("stream %q seq %d: %w", s.def.name, cur, err)
		}
		if !SubjectMatches(filter, string(m.subject)) {
			continue
		}
		if err := s.removeExisting(cur); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
