package broker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flotilla/flotilla/storage"
)

// Storage layout of consumers (broker/DESIGN.md "Consumers" has the why).
//
//	consumers                            "<stream>/<name>" -> def record
//	consumer_state                       "<stream>/<name>" -> state record
//	consumer/<stream>/<name>/pending     stream seq (8 bytes BE) -> pending record
//	consumer/<stream>/<name>/acked       stream seq (8 bytes BE) -> consumer seq (8 bytes BE)
//	                                     of the delivery whose ack settled it
//	                                     (ack_policy explicit; the ackedKeep highest
//	                                     stream sequences; the bucket sequence counts them)
//
// Neither stream nor consumer names may contain '/', so keys are unique
// and a stream's consumers are the keys with the prefix "<stream>/".
// Def and state records start with a CRC-32C like the stream records.
var (
	consumersBucket     = []byte("consumers")
	consumerStateBucket = []byte("consumer_state")
)

const (
	consumerDefVersion   byte = 1
	consumerStateVersion byte = 1
	consumerStateLen          = 4 + 1 + 5*8
	pendingRecLen             = 24
)

func consumerKey(stream, name string) []byte { return []byte(stream + "/" + name) }

func consumerPrefix(stream string) []byte { return []byte(stream + "/") }

func consumerPendingBucket(stream, name string) []byte {
	return []byte("consumer/" + stream + "/" + name + "/pending")
}

func consumerAckedBucket(stream, name string) []byte {
	return []byte("consumer/" + stream + "/" + name + "/acked")
}

// ackedKeep bounds a consumer's acked records: the ones of its highest
// ackedKeep acked stream sequences are kept. A double ack asked again
// after a lost reply is confirmed only while its record is kept, that is
// until the consumer has had about that many more messages acked.
const ackedKeep = 1 << 16

// ackedTrim is how many acked records beyond ackedKeep a consumer may
// hold before the lowest are dropped (in bulk, see recordAcked).
const ackedTrim = 1 << 10

// seqPair is a consumer sequence and the stream sequence it refers to.
type seqPair struct{ cons, stream uint64 }

// consumerRecord is a consumer's replicated definition and state.
type consumerRecord struct {
	stream, name string
	gen          uint64 // Raft index of the create: tells incarnations apart
	created      time.Time
	cfg          ConsumerConfig // normalized
	delivered    seqPair        // last delivered
	ackFloor     seqPair        // everything at or below is acked
	// lpsBoundary is the stream's last sequence when a last_per_subject
	// consumer was created: up to it only each subject's newest message
	// is delivered.
	lpsBoundary uint64
}

// pendingRec is one delivered, unacknowledged message.
type pendingRec struct {
	cseq       uint64 // consumer sequence of its latest delivery
	deliveries uint64
	ts         int64 // Unix ns of its latest delivery
}

func encodeConsumerDef(r *consumerRecord) ([]byte, error) {
	cfgJSON, err := json.Marshal(&r.cfg)
	if err != nil {
		return nil, fmt.Errorf("encode consumer config: %w", err)
	}
	rec := make([]byte, 4, 4+1+16+len(cfgJSON))
	rec = append(rec, consumerDefVersion)
	rec = binary.BigEndian.AppendUint64(rec, r.gen)
	rec = binary.BigEndian.AppendUint64(rec, uint64(unixNano(r.created)))
	return seal(append(rec, cfgJSON...)), nil
}

func decodeConsumerDef(key, rec []byte) (*consumerRecord, error) {
	body, err := unseal(rec)
	if err != nil || len(body) < 17 || body[0] != consumerDefVersion {
		return nil, fmt.Errorf("consumer %q definition: %w", key, errCorruptRecord)
	}
	i := bytes.IndexByte(key, '/')
	if i < 0 {
		return nil, fmt.Errorf("consumer key %q: %w", key, errCorruptRecord)
	}
	r := &consumerRecord{
		stream: string(key[:i]), name: string(key[i+1:]),
		gen:     binary.BigEndian.Uint64(body[1:]),
		created: timeOf(int64(binary.BigEndian.Uint64(body[9:]))),
	}
	if err := json.Unmarshal(body[17:], &r.cfg); err != nil {
		return nil, fmt.Errorf("consumer %q config: %w", key, err)
	}
	return r, nil
}

func (r *consumerRecord) encodeState(dst []byte) []byte {
	dst = append(dst[:0], 0, 0, 0, 0, consumerStateVersion)
	for _, v := range []uint64{r.delivered.cons, r.delivered.stream, r.ackFloor.cons, r.ackFloor.stream, r.lpsBoundary} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return seal(dst)
}

func (r *consumerRecord) decodeState(rec []byte) error {
	body, err := unseal(rec)
	if err != nil || len(body) != consumerStateLen-4 || body[0] != consumerStateVersion {
		return fmt.Errorf("consumer %s/%s state: %w", r.stream, r.name, errCorruptRecord)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(body[1+8*i:]) }
	r.delivered = seqPair{u(0), u(1)}
	r.ackFloor = seqPair{u(2), u(3)}
	r.lpsBoundary = u(4)
	return nil
}

func encodePendingRec(dst []byte, p pendingRec) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], p.cseq)
	dst = binary.BigEndian.AppendUint64(dst, p.deliveries)
	return binary.BigEndian.AppendUint64(dst, uint64(p.ts))
}

func decodePendingRec(v []byte) (pendingRec, bool) {
	if len(v) != pendingRecLen {
		return pendingRec{}, false
	}
	return pendingRec{
		cseq:       binary.BigEndian.Uint64(v),
		deliveries: binary.BigEndian.Uint64(v[8:]),
		ts:         int64(binary.BigEndian.Uint64(v[16:])),
	}, true
}

// readConsumer reads one consumer's definition and state; nil if none.
func readConsumer(tx *storage.Tx, key []byte) (*consumerRecord, error) {
	def := tx.Get(consumersBucket, key)
	if def == nil {
		return nil, nil
	}
	r, err := decodeConsumerDef(key, def)
	if err != nil {
		return nil, err
	}
	st := tx.Get(consumerStateBucket, key)
	if st == nil {
		return nil, fmt.Errorf("consumer %q has no state: %w", key, errCorruptRecord)
	}
	return r, r.decodeState(st)
}

// readPending reads a consumer's pending messages.
func readPending(tx *storage.Tx, stream, name string) (map[uint64]pendingRec, error) {
	out := make(map[uint64]pendingRec)
	b := tx.Bucket(consumerPendingBucket(stream, name))
	if b == nil {
		return out, nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := decodePendingRec(v)
		if !ok || len(k) != 8 {
			return nil, fmt.Errorf("consumer %s/%s pending: %w", stream, name, errCorruptRecord)
		}
		out[seqOf(k)] = p
	}
	return out, nil
}

// readAcked reads which delivery settled each recently acked message of
// a consumer (stream seq -> consumer seq).
func readAcked(tx *storage.Tx, stream, name string) (map[uint64]uint64, error) {
	out := make(map[uint64]uint64)
	b := tx.Bucket(consumerAckedBucket(stream, name))
	if b == nil {
		return out, nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) != 8 {
			return nil, fmt.Errorf("consumer %s/%s acked: %w", stream, name, errCorruptRecord)
		}
		out[seqOf(k)] = binary.BigEndian.Uint64(v)
	}
	return out, nil
}

// streamConsumerKeys returns the keys of a stream's consumers, sorted.
func streamConsumerKeys(tx *storage.Tx, stream string) [][]byte {
	b := tx.Bucket(consumersBucket)
	if b == nil {
		return nil
	}
	prefix := consumerPrefix(stream)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}
