package storage

import (
	"bytes"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// Bucket is one named key space inside a transaction, with keys kept in
// byte order. A handle is valid until its transaction ends or the bucket
// is deleted. The read methods are safe on a nil *Bucket (an absent
// bucket reads as empty), so read paths need no existence checks.
//
// Values handed to Put are not copied: they must stay unchanged until the
// transaction ends (bbolt keeps a reference until commit). Slices returned
// by Get and by cursors are valid only inside the transaction and must not
// be modified.
type Bucket struct{ b *bolt.Bucket }

// Bucket returns the named top-level bucket, or nil if it does not exist.
func (t *Tx) Bucket(name []byte) *Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &Bucket{b: b}
}

// CreateBucket returns the named top-level bucket, creating it if needed.
// It needs a write transaction.
func (t *Tx) CreateBucket(name []byte) (*Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, translate(err)
	}
	return &Bucket{b: b}, nil
}

// DeleteBucket removes the named top-level bucket and everything in it; an
// absent bucket is not an error. Handles to it become invalid.
func (t *Tx) DeleteBucket(name []byte) error {
	err := t.tx.DeleteBucket(name)
	if errors.Is(err, bolt.ErrBucketNotFound) {
		return nil
	}
	return translate(err)
}

// Writable reports whether the transaction may write.
func (t *Tx) Writable() bool { return t.tx.Writable() }

// Get returns the value under key, or nil if absent.
func (b *Bucket) Get(key []byte) []byte {
	if b == nil {
		return nil
	}
	return b.b.Get(key)
}

// Put stores value under key (see the Bucket doc on value lifetime).
func (b *Bucket) Put(key, value []byte) error {
	return translate(b.b.Put(key, value))
}

// Delete removes key; an absent key is not an error.
func (b *Bucket) Delete(key []byte) error {
	return translate(b.b.Delete(key))
}

// Sequence returns the bucket's counter (bbolt's bucket sequence), which
// is stored with the bucket and changes only through SetSequence: callers
// use it, for example, to count the keys they keep.
func (b *Bucket) Sequence() uint64 { return b.b.Sequence() }

// SetSequence sets the bucket's counter.
func (b *Bucket) SetSequence(v uint64) error { return translate(b.b.SetSequence(v)) }

// SetFillPercent sets how full split pages are left for the rest of this
// transaction (0.1 to 1.0; the default is 0.5). Buckets written mostly in
// ascending key order (append-only logs) stay compact with a high value.
func (b *Bucket) SetFillPercent(f float64) {
	b.b.FillPercent = f
}

// Cursor returns a cursor over the bucket. Any write to the bucket may
// invalidate the cursor's position: reposition it (Seek, First, Last)
// after writing.
func (b *Bucket) Cursor() *Cursor {
	if b == nil {
		return &Cursor{}
	}
	return &Cursor{c: b.b.Cursor()}
}

// Cursor iterates a bucket's keys in byte order. Every method returns a nil
// key when there is no such entry. Keys and values are valid only inside
// the transaction.
type Cursor struct {
	c  *bolt.Cursor
	at []byte // the key the cursor is on, for Prev (nil: none)
}

// First moves to the first key.
func (c *Cursor) First() (key, value []byte) {
	if c.c == nil {
		return nil, nil
	}
	return c.on(c.c.First())
}

// Last moves to the last key.
func (c *Cursor) Last() (key, value []byte) {
	if c.c == nil {
		return nil, nil
	}
	return c.on(c.c.Last())
}

// Seek moves to the first key at or after seek.
func (c *Cursor) Seek(seek []byte) (key, value []byte) {
	if c.c == nil {
		return nil, nil
	}
	return c.on(c.c.Seek(seek))
}

// Next moves to the next key.
func (c *Cursor) Next() (key, value []byte) {
	if c.c == nil {
		return nil, nil
	}
	return c.on(c.c.Next())
}

// Prev moves to the previous key.
//
// bbolt's own Prev (v1.4.3) returns nil, as at the start of the bucket,
// when the leaf before the cursor's was emptied by deletes earlier in the
// same write transaction (its Next and Last step over such leaves; Prev
// does not). A stream's subject chain walks back with Prev after a work
// queue's out-of-order acks had emptied leaves, missed the predecessor and
// stopped every replica's apply as corrupt. So a nil from bbolt is checked
// against First, and if a key before the cursor's exists, Prev goes on past
// the empty leaves.
func (c *Cursor) Prev() (key, value []byte) {
	if c.c == nil {
		return nil, nil
	}
	at := c.at
	k, v := c.c.Prev()
	if k != nil || at == nil {
		return c.on(k, v)
	}
	if first, _ := c.c.First(); first == nil || bytes.Compare(first, at) >= 0 {
		return c.on(nil, nil) // truly at the start (bbolt leaves the cursor on the first key)
	}
	c.c.Seek(at)
	for range maxEmptyLeaves {
		if k, v = c.c.Prev(); k != nil {
			return c.on(k, v)
		}
	}
	return c.on(nil, nil)
}

// maxEmptyLeaves bounds Prev's walk past emptied leaves (each step passes
// at least one), as a guard against a loop should bbolt change.
const maxEmptyLeaves = 1 << 24

func (c *Cursor) on(key, value []byte) ([]byte, []byte) {
	c.at = key
	return key, value
}

// Delete removes the entry under the cursor. Reposition the cursor before
// using it again.
func (c *Cursor) Delete() error {
	if c.c == nil {
		return nil
	}
	return translate(c.c.Delete())
}
