package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The bbolt fork (third_party/etcd-io/bbolt) writes a commit's pages that
// are adjacent in the file with one pwritev per run. A commit of many new
// pages (more than one pwritev takes) is a few writes, not one per page;
// commits that rewrite pages scattered over the file (freed pages reused,
// values spilling into overflow pages) read back exactly, before and after
// a reopen, and the file passes bbolt's consistency check.
func TestBoltFork_WritesAdjacentPagesTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages.db")
	opts := &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		t.Fatal(err)
	}
	bucket := []byte("msgs")
	model := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	value := func(n int) []byte {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(rng.UintN(256))
		}
		return v
	}
	key := func(i int) []byte { return fmt.Appendf(nil, "%08d", i) }

	// round 1: about 1,700 new pages in one commit, more than the 1,024
	// buffers a pwritev takes
	before := db.Stats().TxStats
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for i := range 6000 {
			model[string(key(i))] = value(1024)
			if err := b.Put(key(i), model[string(key(i))]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := db.Stats().TxStats
	diff := after.Sub(&before)
	if diff.GetPageCount() < 1500 {
		t.Fatalf("the first commit allocated %d pages, want a large commit", diff.GetPageCount())
	}
	if runtime.GOOS == "linux" && diff.GetWrite() > 8 {
		t.Fatalf("the first commit took %d writes for %d pages, want a few pwritev calls", diff.GetWrite(), diff.GetPageCount())
	}

	// rounds 2-4: deletes free pages all over the file; updates and
	// inserts, some larger than a page, reuse them in scattered runs
	for round := range 3 {
		if err := db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for i := round; i < 6000; i += 3 + round {
				k := key(i)
				switch rng.UintN(3) {
				case 0:
					delete(model, string(k))
					if err := b.Delete(k); err != nil {
						return err
					}
				case 1:
					model[string(k)] = value(64)
				default:
					model[string(k)] = value(int(rng.UintN(20000)) + 1)
				}
				if v, ok := model[string(k)]; ok {
					if err := b.Put(k, v); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("round %d: %v", round+2, err)
		}
		checkBoltModel(t, db, bucket, model)
	}

	// round 5: the fork's Put takes a shortcut for keys after the last
	// one; mix them with keys before the first, and with deletes of the
	// last keys, which move the end back
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := range 2000 {
			var k []byte
			switch i % 4 {
			case 0:
				k = key(6000 + i) // after the last key
			case 1:
				k = fmt.Appendf(nil, "!%08d", 3000-i) // before the first, descending
			case 2:
				k = key(6000 + i - 2) // the key appended two steps ago
				delete(model, string(k))
				if err := b.Delete(k); err != nil {
					return err
				}
				continue
			default:
				k = key(6000 + i - 1) // just below the last key
			}
			model[string(k)] = value(int(rng.UintN(300)) + 1)
			if err := b.Put(k, model[string(k)]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("round 5: %v", err)
	}
	checkBoltModel(t, db, bucket, model)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = bolt.Open(path, 0o600, opts); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkBoltModel(t, db, bucket, model)
}

// checkBoltModel compares the bucket with the model and runs bbolt's
// consistency check (page references, freelist, ordering).
func checkBoltModel(t *testing.T, db *bolt.DB, bucket []byte, model map[string][]byte) {
	t.Helper()
	if err := db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("check: %d errors, first: %w", len(errs), errs[0])
		}
		b := tx.Bucket(bucket)
		n := 0
		if err := b.ForEach(func(k, v []byte) error {
			n++
			if want, ok := model[string(k)]; !ok || !bytes.Equal(v, want) {
				return fmt.Errorf("key %s: %d bytes, want %d (in model: %v)", k, len(v), len(want), ok)
			}
			return nil
		}); err != nil {
			return err
		}
		if n != len(model) {
			return fmt.Errorf("%d keys, want %d", n, len(model))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// In the fork, Put and Delete reuse one cursor per bucket and transaction,
// whose search stack has room for four levels: appending records to a
// three-level tree costs one allocation each (bbolt's copy of the key),
// where upstream took four (a new cursor, and its stack grown from nothing).
func TestBoltFork_PutAllocations(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "allocs.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("msgs")
	key := func(i int) []byte { return fmt.Appendf(nil, "%016d", i) }
	val := make([]byte, 150)
	const base = 100000 // three levels: leaves, branches, the root
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for i := range base {
			if err := b.Put(key(i), val); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys := make([][]byte, 2001)
	for i := range keys {
		keys[i] = key(base + i)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		next := 0
		allocs := testing.AllocsPerRun(2000, func() {
			if err := b.Put(keys[next], val); err != nil {
				t.Fatal(err)
			}
			next++
		})
		t.Logf("%.2f allocations per appended record", allocs)
		if allocs > 1.5 {
			t.Errorf("%.2f allocations per appended record, want about 1", allocs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
