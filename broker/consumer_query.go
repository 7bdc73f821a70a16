package broker

import (
	"fmt"
	"slices"

	"github.com/flotilla/flotilla/storage"
)

// Reads of stream messages on behalf of consumers: where a new consumer
// starts (in the apply, deterministic), and what the delivery engine sends
// next and how much is left (in read transactions on the leader).

// matchesFilters reports whether subject passes a consumer's filters (no
// filters: everything).
func matchesFilters(filters []string, subject string) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if SubjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// nextMatching returns the first sequence at or after from whose subject
// passes filters, 0 if none.
func (r msgReader) nextMatching(filters []string, from uint64) uint64 {
	switch len(filters) {
	case 0:
		k, _ := r.cursor().seek(from)
		if k == nil {
			return 0
		}
		return seqOf(k)
	case 1:
		return r.nextFor(filters[0], from)
	}
	var best uint64
	for _, f := range filters {
		if s := r.nextFor(f, from); s > 0 && (best == 0 || s < best) {
			best = s
		}
	}
	return best
}

// lastMatching returns the last sequence whose subject passes filters.
func (r msgReader) lastMatching(filters []string) uint64 {
	if len(filters) == 0 {
		k, _ := r.msgs.Cursor().Last()
		if k == nil {
			return 0
		}
		return seqOf(k)
	}
	var last uint64
	for _, f := range filters {
		last = max(last, r.lastFor(f))
	}
	return last
}

// firstAtOrAfterTime returns the first sequence stored at or after ts
// (Unix ns). Store times only grow with the sequence.
func (r msgReader) firstAtOrAfterTime(ts int64) uint64 {
	c := r.msgs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if msgRecordTime(v) >= ts {
			return seqOf(k)
		}
	}
	return 0
}

// lastPerSubject returns, sorted, the last sequence of every subject that
// passes filters, up to and including bound.
func (r msgReader) lastPerSubject(filters []string, bound uint64) []uint64 {
	var out []uint64
	c := r.subjects.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, _, last, ok := decodeSubjRecord(v); ok && last <= bound && matchesFilters(filters, string(k)) {
			out = append(out, last)
		}
	}
	slices.Sort(out)
	return out
}

// startSeq returns the first stream sequence a new consumer considers and,
// for last_per_subject, the boundary up to which only each subject's last
// message counts. It runs in the apply, on the stream as of the create.
func (s *streamTx) startSeq(cfg *ConsumerConfig) (start, boundary uint64, err error) {
	if err := s.flushSubjects(); err != nil { // the subject scans read the bucket
		return 0, 0, err
	}
	r := msgReader{msgs: s.msgs, subjects: s.subjects}
	next := s.c.last + 1
	filters := cfg.Filters()
	or := func(seq uint64) uint64 {
		if seq == 0 {
			return next
		}
		return seq
	}
	switch cfg.DeliverPolicy {
	case DeliverLast:
		return or(r.lastMatching(filters)), 0, nil
	case DeliverNew:
		return next, 0, nil
	case DeliverByStartSequence:
		return max(cfg.OptStartSeq, 1), 0, nil
	case DeliverByStartTime:
		if cfg.OptStartTime == nil {
			return 0, 0, fmt.Errorf("by_start_time without a time passed normalization")
		}
		return or(r.firstAtOrAfterTime(unixNano(*cfg.OptStartTime))), 0, nil
	case DeliverLastPerSubject:
		lps := r.lastPerSubject(filters, s.c.last)
		if len(lps) == 0 {
			return next, 0, nil
		}
		return lps[0], s.c.last, nil
	default: // all: from the stream's first message, whatever the filter (as nats-server)
		return max(s.c.first, 1), 0, nil
	}
}

// streamReader opens a stream's message buckets in a read transaction;
// ok is false when the stream does not exist.
func streamReader(tx *storage.Tx, stream string) (msgReader, streamCounters, bool, error) {
	st := tx.Get(streamStateBucket, []byte(stream))
	if st == nil {
		return msgReader{}, streamCounters{}, false, nil
	}
	c, err := decodeStreamCounters(st)
	if err != nil {
		return msgReader{}, c, false, err
	}
	b := newStreamBuckets(stream)
	r := msgReader{msgs: tx.Bucket(b.msgs), subjects: tx.Bucket(b.subjects)}
	if r.msgs == nil || r.subjects == nil {
		return msgReader{}, c, false, nil
	}
	r.cur = &msgCursor{b: r.msgs}
	return r, c, true, nil
}

// countAfter counts the messages after seq that pass filters. Unfiltered
// on a stream without interior deletes it is arithmetic; a literal filter
// uses its subject's record when seq is outside the subject's range;
// otherwise it scans (the engine caches the result and updates it as it
// delivers).
func (r msgReader) countAfter(c *streamCounters, filters []string, seq uint64) uint64 {
	if c.msgs == 0 || seq >= c.last {
		return 0
	}
	if len(filters) == 0 && c.dense() {
		return c.last - max(seq, c.first-1)
	}
	if len(filters) == 1 && isLiteral(filters[0]) {
		count, first, last, ok := decodeSubjRecord(r.subjects.Get([]byte(filters[0])))
		switch {
		case !ok || seq >= last:
			return 0
		case seq < first:
			return count
		}
	}
	var n uint64
	cur := r.msgs.Cursor()
	for k, v := cur.Seek(seqKey(nil, seq+1)); k != nil; k, v = cur.Next() {
		if len(filters) == 0 {
			n++
			continue
		}
		if _, m, err := decodeMsgRecord(v); err == nil && matchesFilters(filters, string(m.subject)) {
			n++
		}
	}
	return n
}
