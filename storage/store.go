package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flotilla/flotilla/internal/fsutil"
)

var (
	metaBucket     = []byte("meta")
	lastAppliedKey = []byte("last_applied_index")
)

// Store is one node's durable state-machine file (a bbolt database). Every
// write transaction that applies Raft entries also records the last
// applied index, atomically, so a restarted node skips what it already
// applied instead of rebuilding from a snapshot.
type Store struct {
	path string
	opts Options
	mu   sync.RWMutex // guards db across Restore's swap
	db   *bolt.DB
	// gate holds new read transactions back while a write transaction
	// that called Tx.HoldReaders commits (see there). Readers take it
	// shared only around bbolt's Begin, never for the whole read.
	gate sync.RWMutex
}

// Open opens (creating if needed) the store file at path, fsyncing every
// commit.
func Open(path string) (*Store, error) { return OpenWith(path, Options{}) }

// OpenWith opens (creating if needed) the store file at path. With
// LazySync it returns ErrUntrusted, without opening the file, when the
// file may have lost commits in a machine crash (lazysync.go).
func OpenWith(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create store dir: %w", err)
	}
	if opts.LazySync {
		if err := checkTrusted(path, opts.bootID()); err != nil {
			return nil, err
		}
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, opts: opts, db: db}
	if opts.LazySync {
		// Make what a crashed process left behind durable before the
		// marker claims this boot.
		if err := db.Sync(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sync store: %w", err)
		}
		if err := writeOpenMarker(path, opts.bootID()); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// openDB opens the bbolt file. The free page list is neither written at
// each commit (NoFreelistSync) nor kept as a sorted array: by default bbolt
// rewrites the whole list with every commit and merges it into a new
// array, so once a file has many free pages (a deleted or purged stream, a
// work queue) every applied Raft batch paid for all of them:
// BenchmarkCommitWithLargeFreelist (400,000 records deleted) measured 717
// us and 745 KB allocated per small commit, against 63 us and 22 KB with
// these options (etcd runs bbolt the same way). The price is paid at open:
// bbolt rebuilds the list by walking the file, 1.8 s for a 1.75 GB file in
// the page cache. With LazySync, growing the file is not fsynced either
// (NoGrowSync): bbolt's grow-time fsync flushed every page the lazy commits
// had left dirty, a stall of up to 100 ms that the Raft log's syncs on the
// same disk queued behind; the file's size is no more needed after a
// machine crash than its unsynced commits (lazysync.go).
func openDB(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.LazySync,
		NoGrowSync: opts.LazySync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, translate(err))
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(metaBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init store: %w", translate(err))
	}
	return db, nil
}

// Path returns the store's file path.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	var err error
	if s.opts.LazySync {
		// A clean close: everything is on disk and the marker goes.
		if err = s.db.Sync(); err == nil {
			err = removeOpenMarker(s.path)
		}
	}
	if cerr := s.db.Close(); err == nil {
		err = translate(cerr)
	}
	s.db = nil
	return err
}

// LastApplied returns the last Raft index whose effects are in the store.
func (s *Store) LastApplied() (uint64, error) {
	var idx uint64
	err := s.View(func(tx *Tx) error {
		idx = tx.LastApplied()
		return nil
	})
	return idx, err
}

// Size is the size in bytes of the store as of its last commit: what a
// Snapshot writes out.
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.View(func(tx *Tx) error {
		n = tx.tx.Size()
		return nil
	})
	return n, err
}

// Update runs fn in one write transaction, committed (and fsynced, unless
// the store syncs lazily) when fn returns nil and rolled back otherwise.
func (s *Store) Update(fn func(*Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	var tx *Tx
	defer func() {
		if tx != nil && tx.holding {
			s.gate.Unlock() // after bbolt's commit or rollback
		}
	}()
	return translate(s.db.Update(func(btx *bolt.Tx) error {
		tx = &Tx{tx: btx, s: s}
		return fn(tx)
	}))
}

// View runs fn in a read transaction. The transaction begins after any
// commit whose writer called HoldReaders.
func (s *Store) View(fn func(*Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	btx, err := s.beginRead()
	if err != nil {
		return translate(err)
	}
	defer func() { _ = btx.Rollback() }()
	return translate(fn(&Tx{tx: btx}))
}

// beginRead begins a read transaction once no held commit is under way.
func (s *Store) beginRead() (*bolt.Tx, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.db.Begin(false)
}

// Tx is a store transaction. Buckets are created on first write.
type Tx struct {
	tx      *bolt.Tx
	s       *Store // set in write transactions
	holding bool   // HoldReaders was called
}

// HoldReaders makes every read transaction that begins from now on wait
// until this write transaction has committed (or rolled back). A writer
// calls it before it tells anyone about the transaction's effects ahead of
// the commit: whoever learns of them and then reads is sure to see them.
// Only reads that begin later wait; one already open keeps its view. It
// may be called once fn has nothing left to do but return: a View on the
// writer's own goroutine would wait for ever.
func (t *Tx) HoldReaders() {
	if t.s == nil {
		panic("storage: HoldReaders in a read transaction")
	}
	if !t.holding {
		t.s.gate.Lock()
		t.holding = true
	}
}

// LastApplied returns the recorded last applied index (0 if none).
func (t *Tx) LastApplied() uint64 {
	v := t.tx.Bucket(metaBucket).Get(lastAppliedKey)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SetLastApplied records the last applied index in this transaction.
func (t *Tx) SetLastApplied(idx uint64) error {
	return translate(t.tx.Bucket(metaBucket).Put(lastAppliedKey, binary.BigEndian.AppendUint64(nil, idx)))
}

// Put stores value under key in bucket, creating the bucket if needed. The
// value is not copied and must stay unchanged until the transaction ends.
func (t *Tx) Put(bucket, key, value []byte) error {
	b, err := t.tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return translate(err)
	}
	return translate(b.Put(key, value))
}

// Get returns the value under key in bucket (nil if absent). The slice is
// valid only inside the transaction.
func (t *Tx) Get(bucket, key []byte) []byte {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// Delete removes key from bucket.
func (t *Tx) Delete(bucket, key []byte) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return translate(b.Delete(key))
}

// ForEach calls fn for every key in bucket in key order until fn returns
// an error.
func (t *Tx) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return translate(b.ForEach(fn))
}

// Snapshot is a consistent point-in-time copy of the whole store, backed by
// a read transaction that stays open until Release.
type Snapshot struct {
	tx   *bolt.Tx
	s    *Store
	once sync.Once
}

// Snapshot opens a read transaction for writing the store out while
// writes continue.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	tx, err := s.beginRead()
	if err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("begin snapshot: %w", translate(err))
	}
	// The read lock is held until Release so Restore cannot swap the file
	// under an open snapshot.
	return &Snapshot{tx: tx, s: s}, nil
}

// WriteTo writes the database file as of the snapshot.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := sn.tx.WriteTo(w)
	return n, translate(err)
}

// Release ends the snapshot's read transaction.
func (sn *Snapshot) Release() {
	sn.once.Do(func() {
		_ = sn.tx.Rollback()
		sn.s.mu.RUnlock()
	})
}

// Restore replaces the store with a snapshot written by Snapshot.WriteTo:
// the bytes go to a temp file that is fsynced and validated, then renamed
// over the store (an atomic swap), and the store is reopened.
func (s *Store) Restore(r io.Reader) error {
	tmp := s.path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create restore file: %w", err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write restore file: %w", err)
	}
	check, err := openDB(tmp, Options{})
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("validate snapshot: %w", errors.Join(ErrCorrupt, err))
	}
	_ = check.Close()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("close store for restore: %w", translate(err))
		}
		s.db = nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("swap in restored store: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	db, err := openDB(s.path, s.opts)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// translate maps bbolt's errors onto this package's sentinels so callers
// never depend on bbolt.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return errors.Join(ErrCorrupt, err)
	default:
		return err
	}
}
