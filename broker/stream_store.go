package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/flotilla/flotilla/storage"
)

// Storage layout of streams (broker/DESIGN.md "Streams" has the why).
//
//	streams                   name -> def record
//	stream_state              name -> state record
//	stream/<name>/msgs        seq (8 bytes BE) -> message record
//	stream/<name>/subjects    subject -> count (8) | first seq (8) | last seq (8)
//	stream/<name>/subjnext    seq (8) -> next seq on the same subject (8), where that is not seq+1
//	stream/<name>/dedup       Nats-Msg-Id -> seq (8) | time (8)
//	stream/<name>/dedupseq    seq (8) -> time (8) | Nats-Msg-Id
//
// Records that are the source of truth (def, state, message) start with a
// CRC-32C of the rest; subjects, subjnext, dedup and dedupseq are indexes
// that could be rebuilt from the messages. subjnext chains each subject's
// messages in order: storing a message updates its subject's previous
// last message, which is recent, so the writes of a batch stay near the
// end of the bucket whatever the number of subjects. A link to seq+1 is
// implied, not stored: a message that is not its subject's last and has
// no subjnext record is followed on its subject by the next sequence. So
// a run of messages on one subject (a single-subject stream, a burst)
// costs no chain writes at all; those were a second B+tree insert per
// message, 23% of a follower's CPU under 128 B async publishing. (Files
// written before this stored every link; a stored link still wins, so
// they read the same.) Times are Unix nanoseconds, 0 for none. Stream
// names cannot contain '/', so bucket names are unique.
var (
	streamsBucket     = []byte("streams")
	streamStateBucket = []byte("stream_state")
)

const (
	defRecordVersion   byte = 1
	stateRecordVersion byte = 1
	maxStoredKeyLen         = 4096 // subjects and Nats-Msg-Id values (bbolt keys are at most 32 KiB)
	maxHeaderLen            = 65535
	arenaChunk              = 256 << 10
	arenaKeep               = 4 << 20
)

var (
	crcTable = crc32.MakeTable(crc32.Castagnoli)
	// errCorruptRecord means a stored record failed its checksum or does
	// not parse. Apply panics on it (through ApplyBatch): this replica's
	// file is damaged and must be repaired from its peers.
	errCorruptRecord = errors.New("corrupt stream record")
)

// streamBuckets are the names of one stream's buckets.
type streamBuckets struct{ msgs, subjects, subjNext, dedup, dedupSeq []byte }

func newStreamBuckets(name string) streamBuckets {
	p := "stream/" + name + "/"
	return streamBuckets{
		msgs:     []byte(p + "msgs"),
		subjects: []byte(p + "subjects"),
		subjNext: []byte(p + "subjnext"),
		dedup:    []byte(p + "dedup"),
		dedupSeq: []byte(p + "dedupseq"),
	}
}

func (b streamBuckets) all() [][]byte {
	return [][]byte{b.msgs, b.subjects, b.subjNext, b.dedup, b.dedupSeq}
}

// seal prepends the CRC-32C of body[4:] to body (whose first 4 bytes are
// reserved for it).
func seal(rec []byte) []byte {
	binary.BigEndian.PutUint32(rec, crc32.Checksum(rec[4:], crcTable))
	return rec
}

// unseal checks a record's checksum and returns its body.
func unseal(rec []byte) ([]byte, error) {
	if len(rec) < 4 || binary.BigEndian.Uint32(rec) != crc32.Checksum(rec[4:], crcTable) {
		return nil, errCorruptRecord
	}
	return rec[4:], nil
}

// Def record: crc | version | raft index of the create/update | created
// time | config JSON.
func encodeDefRecord(index uint64, created time.Time, cfgJSON []byte) []byte {
	rec := make([]byte, 4, 4+1+16+len(cfgJSON))
	rec = append(rec, defRecordVersion)
	rec = binary.BigEndian.AppendUint64(rec, index)
	rec = binary.BigEndian.AppendUint64(rec, uint64(unixNano(created)))
	return seal(append(rec, cfgJSON...))
}

func decodeDefRecord(rec []byte) (index uint64, created time.Time, cfgJSON []byte, err error) {
	body, err := unseal(rec)
	if err != nil || len(body) < 17 || body[0] != defRecordVersion {
		return 0, time.Time{}, nil, fmt.Errorf("stream definition: %w", errCorruptRecord)
	}
	return binary.BigEndian.Uint64(body[1:]), timeOf(int64(binary.BigEndian.Uint64(body[9:]))), body[17:], nil
}

// streamCounters are a stream's state record: crc | version | first seq |
// last seq | first time | last time | msgs | bytes | subjects | bytes
// last Nats-Msg-Id.
type streamCounters struct {
	first, last         uint64
	firstTime, lastTime int64
	msgs, bytes         uint64
	subjects            uint64
	lastMsgID           []byte
}

// dense reports whether the stream has no holes: every sequence from first
// to last holds a message.
func (c *streamCounters) dense() bool { return c.msgs == c.last-c.first+1 }

func (c *streamCounters) encode(dst []byte) []byte {
	dst = append(dst[:0], 0, 0, 0, 0, stateRecordVersion)
	for _, v := range [...]uint64{c.first, c.last, uint64(c.firstTime), uint64(c.lastTime), c.msgs, c.bytes, c.subjects} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return seal(appendBytes(dst, c.lastMsgID))
}

const stateRecordFixed = 1 + 7*8

func stateRecordLen(c *streamCounters) int {
	return 4 + stateRecordFixed + uvarintLen(uint64(len(c.lastMsgID))) + len(c.lastMsgID)
}

// decodeStreamCounters parses a state record; lastMsgID is copied.
func decodeStreamCounters(rec []byte) (streamCounters, error) {
	body, err := unseal(rec)
	if err != nil || len(body) < stateRecordFixed || body[0] != stateRecordVersion {
		return streamCounters{}, fmt.Errorf("stream state: %w", errCorruptRecord)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(body[1+8*i:]) }
	c := streamCounters{
		first: u(0), last: u(1), firstTime: int64(u(2)), lastTime: int64(u(3)),
		msgs: u(4), bytes: u(5), subjects: u(6),
	}
	id, rest, err := readBytes(body[stateRecordFixed:])
	if err != nil || len(rest) != 0 {
		return streamCounters{}, fmt.Errorf("stream state: %w", errCorruptRecord)
	}
	if len(id) > 0 {
		c.lastMsgID = bytes.Clone(id)
	}
	return c, nil
}

// state converts counters to the API's StreamState.
func (c *streamCounters) state() StreamState {
	s := StreamState{
		Msgs: c.msgs, Bytes: c.bytes, FirstSeq: c.first, LastSeq: c.last,
		FirstTime: timeOf(c.firstTime), LastTime: timeOf(c.lastTime),
		NumSubjects: int(c.subjects),
	}
	if c.msgs > 0 {
		s.NumDeleted = int(c.last - c.first + 1 - c.msgs)
	}
	return s
}

// Message record: crc | time (8) | bytes subject | bytes header | data.
func msgRecordLen(m *pubMsg) int {
	return 4 + 8 + uvarintLen(uint64(len(m.subject))) + len(m.subject) + uvarintLen(uint64(len(m.header))) + len(m.header) + len(m.data)
}

func encodeMsgRecord(dst []byte, ts int64, m *pubMsg) []byte {
	dst = append(dst[:0], 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = appendBytes(dst, m.subject)
	dst = appendBytes(dst, m.header)
	return seal(append(dst, m.data...))
}

// decodeMsgRecord checks and splits a message record; the slices alias
// rec.
func decodeMsgRecord(rec []byte) (ts int64, m pubMsg, err error) {
	body, err := unseal(rec)
	if err != nil || len(body) < 8 {
		return 0, pubMsg{}, fmt.Errorf("message: %w", errCorruptRecord)
	}
	ts = int64(binary.BigEndian.Uint64(body))
	var rest []byte
	if m.subject, rest, err = readBytes(body[8:]); err == nil {
		m.header, rest, err = readBytes(rest)
	}
	if err != nil || len(m.subject) == 0 {
		return 0, pubMsg{}, fmt.Errorf("message: %w", errCorruptRecord)
	}
	m.data = rest
	return ts, m, nil
}

// msgRecordTime reads a message record's time without checking it.
func msgRecordTime(rec []byte) int64 {
	if len(rec) < 12 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(rec[4:]))
}

// msgSize is what a message counts against max_bytes and in "bytes".
func msgSize(m *pubMsg) uint64 { return uint64(len(m.subject) + len(m.header) + len(m.data)) }

func seqKey(dst []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(dst[:0], seq) }

func seqOf(key []byte) uint64 {
	if len(key) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(key)
}

// Subject record: count | first seq | last seq.
const subjRecordLen = 24

func decodeSubjRecord(v []byte) (count, first, last uint64, ok bool) {
	if len(v) != subjRecordLen {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), binary.BigEndian.Uint64(v[16:]), true
}

// arena hands out value buffers for one storage transaction. bbolt keeps
// references to values until commit, so a buffer is never reused within
// the transaction; after commit the chunks are reset and reused.
type arena struct {
	chunks [][]byte
	cur    int
}

func (a *arena) alloc(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, n)
	}
	for a.cur < len(a.chunks) {
		c := a.chunks[a.cur]
		if cap(c)-len(c) >= n {
			a.chunks[a.cur] = c[:len(c)+n]
			return c[len(c) : len(c)+n : len(c)+n]
		}
		a.cur++
	}
	a.chunks = append(a.chunks, make([]byte, n, arenaChunk))
	return a.chunks[a.cur][:n:n]
}

func (a *arena) reset() {
	keep := 0
	for i, c := range a.chunks {
		if (i+1)*arenaChunk > arenaKeep {
			break
		}
		a.chunks[i] = c[:0]
		keep = i + 1
	}
	clear(a.chunks[keep:])
	a.chunks = a.chunks[:keep]
	a.cur = 0
}

// subjEntry is one subject's index record, cached for a batch.
type subjEntry struct {
	subject            string
	count, first, last uint64
	dirty              bool
}

// streamTx is one stream's working state during a batch: counters loaded
// once, subject records cached, both written back by flush at the end of
// the batch (in first-touched order, so every replica writes the same
// pages).
type streamTx struct {
	ac      *applyCtx
	def     *streamDef
	c       streamCounters
	dirty   bool
	deleted bool

	msgs, subjects, subjNext, dedup, dedupSeq *storage.Bucket

	subj      map[string]*subjEntry
	subjDirty []*subjEntry
}

func loadStreamTx(ac *applyCtx, def *streamDef) (*streamTx, error) {
	s := &streamTx{ac: ac, def: def, subj: make(map[string]*subjEntry)}
	if err := s.openBuckets(); err != nil {
		return nil, err
	}
	rec := ac.stateBucket.Get(def.nameKey)
	if rec == nil {
		return nil, fmt.Errorf("stream %q has no state record: %w", def.name, errCorruptRecord)
	}
	c, err := decodeStreamCounters(rec)
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", def.name, err)
	}
	s.c = c
	return s, nil
}

func (s *streamTx) openBuckets() error {
	var err error
	open := func(name []byte) *storage.Bucket {
		if err != nil {
			return nil
		}
		var b *storage.Bucket
		b, err = s.ac.tx.CreateBucket(name)
		return b
	}
	k := s.def.buckets
	s.msgs, s.subjects, s.subjNext, s.dedup, s.dedupSeq = open(k.msgs), open(k.subjects), open(k.subjNext), open(k.dedup), open(k.dedupSeq)
	if err == nil {
		// Sequences only grow: pack the pages.
		s.msgs.SetFillPercent(0.9)
		s.subjNext.SetFillPercent(0.9)
	}
	return err
}

// flush writes the dirty subject records and the counters.
func (s *streamTx) flush() error {
	if s.deleted {
		return nil
	}
	if err := s.flushSubjects(); err != nil {
		return err
	}
	if !s.dirty {
		return nil
	}
	s.dirty = false
	rec := s.c.encode(s.ac.arena.alloc(stateRecordLen(&s.c))[:0])
	return s.ac.stateBucket.Put(s.def.nameKey, rec)
}

// flushSubjects writes the dirty subject records; a scan of the subjects
// bucket must flush first.
func (s *streamTx) flushSubjects() error {
	for _, e := range s.subjDirty {
		e.dirty = false
		key := s.ac.key(e.subject)
		if e.count == 0 {
			if err := s.subjects.Delete(key); err != nil {
				return err
			}
			continue
		}
		v := s.ac.arena.alloc(subjRecordLen)
		binary.BigEndian.PutUint64(v, e.count)
		binary.BigEndian.PutUint64(v[8:], e.first)
		binary.BigEndian.PutUint64(v[16:], e.last)
		if err := s.subjects.Put(key, v); err != nil {
			return err
		}
	}
	s.subjDirty = s.subjDirty[:0]
	return nil
}

// entry returns the subject's record (count 0 if it has no messages).
func (s *streamTx) entry(subject []byte) *subjEntry {
	if e, ok := s.subj[string(subject)]; ok {
		return e
	}
	e := &subjEntry{subject: string(subject)}
	e.count, e.first, e.last, _ = decodeSubjRecord(s.subjects.Get(subject))
	s.subj[e.subject] = e
	return e
}

func (s *streamTx) touch(e *subjEntry) {
	if !e.dirty {
		e.dirty = true
		s.subjDirty = append(s.subjDirty, e)
	}
}

// store appends a message with the next sequence.
func (s *streamTx) store(m *pubMsg, ts int64, msgID []byte) (uint64, error) {
	seq := s.c.last + 1
	rec := encodeMsgRecord(s.ac.arena.alloc(msgRecordLen(m))[:0], ts, m)
	if err := s.msgs.Put(s.ac.seqKey(seq), rec); err != nil {
		return 0, err
	}
	e := s.entry(m.subject)
	switch {
	case e.count == 0:
		s.c.subjects++
		e.first = seq
	case e.last+1 == seq: // implied
	default:
		if err := s.setNext(e.last, seq); err != nil {
			return 0, err
		}
	}
	e.count++
	e.last = seq
	s.touch(e)
	if s.c.msgs == 0 {
		s.c.first, s.c.firstTime = seq, ts
	}
	s.c.last, s.c.lastTime = seq, ts
	s.c.msgs++
	s.c.bytes += msgSize(m)
	s.c.lastMsgID = msgID
	s.dirty = true
	if len(msgID) > 0 {
		if err := s.rememberMsgID(msgID, seq, ts); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// remove deletes one message; false if it is not stored.
func (s *streamTx) remove(seq uint64) (bool, error) {
	rec := s.msgs.Get(s.ac.seqKey(seq))
	if rec == nil {
		return false, nil
	}
	_, m, err := decodeMsgRecord(rec)
	if err != nil {
		return false, fmt.Errorf("stream %q seq %d: %w", s.def.name, seq, err)
	}
	e := s.entry(m.subject)
	if err := s.unlink(e, seq); err != nil {
		return false, err
	}
	if err := s.msgs.Delete(s.ac.seqKey(seq)); err != nil {
		return false, err
	}
	if e.count == 0 {
		s.c.subjects--
	}
	s.c.msgs--
	s.c.bytes -= msgSize(&m)
	s.dirty = true
	switch {
	case s.c.msgs == 0:
		s.c.first, s.c.firstTime = s.c.last+1, 0
	case seq == s.c.first:
		k, v := s.msgs.Cursor().Seek(s.ac.seqKey(seq + 1))
		if k == nil {
			return false, fmt.Errorf("stream %q: %d messages counted, none stored: %w", s.def.name, s.c.msgs, errCorruptRecord)
		}
		s.c.first, s.c.firstTime = seqOf(k), msgRecordTime(v)
	}
	return true, nil
}

// removeHead removes the first message.
func (s *streamTx) removeHead() error {
	ok, err := s.remove(s.c.first)
	if err == nil && !ok {
		err = fmt.Errorf("stream %q: first seq %d not stored: %w", s.def.name, s.c.first, errCorruptRecord)
	}
	return err
}

// next returns the next sequence after seq on e's subject (0 if seq is
// its last), and whether a subjnext record says so (else it is implied).
func (s *streamTx) next(e *subjEntry, seq uint64) (next uint64, stored bool) {
	if seq == e.last {
		return 0, false
	}
	if v := s.subjNext.Get(s.ac.seqKey(seq)); len(v) == 8 {
		return binary.BigEndian.Uint64(v), true
	}
	return seq + 1, false
}

func (s *streamTx) setNext(seq, next uint64) error {
	v := s.ac.arena.alloc(8)
	binary.BigEndian.PutUint64(v, next)
	return s.subjNext.Put(s.ac.seqKey(seq), v)
}

// unlink takes seq out of its subject's chain and record. Removing a
// subject's first message (the stream's head, limits, purges, roll-ups)
// is O(1); only a message deleted from the middle (MSG.DELETE) walks
// back to its predecessor.
func (s *streamTx) unlink(e *subjEntry, seq uint64) error {
	if e.count == 0 {
		return fmt.Errorf("stream %q subject %q: count 0: %w", s.def.name, e.subject, errCorruptRecord)
	}
	next, stored := s.next(e, seq)
	if stored {
		if err := s.subjNext.Delete(s.ac.seqKey(seq)); err != nil {
			return err
		}
	}
	e.count--
	s.touch(e)
	switch {
	case e.count == 0:
		e.first, e.last = 0, 0
	case seq == e.first:
		if next == 0 {
			return fmt.Errorf("stream %q subject %q: chain ends at its first: %w", s.def.name, e.subject, errCorruptRecord)
		}
		e.first = next
	default:
		prev, err := s.prev(e, seq)
		if err != nil {
			return err
		}
		if next != 0 {
			return s.setNext(prev, next) // next > seq > prev: never implied
		}
		e.last = prev
		return s.subjNext.Delete(s.ac.seqKey(prev))
	}
	return nil
}

// prev finds the message before seq on e's subject: seq-1 when that is
// stored on the same subject (the link is then implied or stored), else
// the one whose stored link names seq, found by walking the chain bucket
// back from seq, no further than the subject's first message.
func (s *streamTx) prev(e *subjEntry, seq uint64) (uint64, error) {
	first := e.first
	if seq-1 >= first {
		if rec := s.msgs.Get(s.ac.seqKey(seq - 1)); rec != nil {
			_, m, err := decodeMsgRecord(rec)
			if err != nil {
				return 0, fmt.Errorf("stream %q seq %d: %w", s.def.name, seq-1, err)
			}
			if string(m.subject) == e.subject {
				return seq - 1, nil
			}
		}
	}
	c := s.subjNext.Cursor()
	k, v := c.Seek(s.ac.seqKey(seq))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && seqOf(k) >= first; k, v = c.Prev() {
		if len(v) == 8 && binary.BigEndian.Uint64(v) == seq {
			return seqOf(k), nil
		}
	}
	return 0, fmt.Errorf("stream %q seq %d: no predecessor on its subject: %w", s.def.name, seq, errCorruptRecord)
}

// purgeAll drops every message (keeping the sequence, last time and the
// dedup ids) and returns how many there were.
func (s *streamTx) purgeAll() (uint64, error) {
	n := s.c.msgs
	k := s.def.buckets
	for _, b := range [][]byte{k.msgs, k.subjects, k.subjNext} {
		if err := s.ac.tx.DeleteBucket(b); err != nil {
			return 0, err
		}
	}
	if err := s.openBuckets(); err != nil {
		return 0, err
	}
	clear(s.subj)
	s.subjDirty = s.subjDirty[:0]
	s.c.msgs, s.c.bytes, s.c.subjects = 0, 0, 0
	s.c.first, s.c.firstTime = s.c.last+1, 0
	s.dirty = true
	return n, nil
}

// duplicateOf returns the sequence stored under msgID if it is inside
// the duplicate window as of now.
func (s *streamTx) duplicateOf(msgID []byte, now int64) (uint64, bool) {
	v := s.dedup.Get(msgID)
	if len(v) != 16 {
		return 0, false
	}
	seq, ts := binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:]))
	if now-ts < int64(s.def.cfg.Duplicates) {
		return seq, true
	}
	return 0, false
}

func (s *streamTx) rememberMsgID(msgID []byte, seq uint64, ts int64) error {
	if old := s.dedup.Get(msgID); len(old) == 16 {
		// An expired entry being replaced before Expire pruned it.
		if err := s.dedupSeq.Delete(old[:8]); err != nil {
			return err
		}
	}
	v := s.ac.arena.alloc(16)
	binary.BigEndian.PutUint64(v, seq)
	binary.BigEndian.PutUint64(v[8:], uint64(ts))
	if err := s.dedup.Put(msgID, v); err != nil {
		return err
	}
	q := s.ac.arena.alloc(8 + len(msgID))
	binary.BigEndian.PutUint64(q, uint64(ts))
	copy(q[8:], msgID)
	return s.dedupSeq.Put(s.ac.seqKey(seq), q)
}

// pruneMsgIDs forgets the ids stored at or before cutoff. The dedupseq
// bucket is in sequence order, which is time order (message times never
// go backwards within a stream).
func (s *streamTx) pruneMsgIDs(cutoff int64) error {
	c := s.dedupSeq.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) > cutoff {
			return nil
		}
		id := v[8:]
		if cur := s.dedup.Get(id); len(cur) == 16 && bytes.Equal(cur[:8], k) {
			if err := s.dedup.Delete(id); err != nil {
				return err
			}
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
