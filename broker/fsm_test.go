package broker

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/storage"
)

func newTestFSM(t *testing.T) (*FSM, *storage.Store) {
	t.Helper()
	st, err := storage.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return NewFSM(st, zaptest.NewLogger(t)), st
}

// Golden bytes: every replica must decode every entry ever written, so
// the envelope may never change silently.
func TestCommand_GoldenBytes(t *testing.T) {
	t.Parallel()
	if got, want := EncodeCommand(CmdNoop, nil), []byte{0x01, 0x01}; !bytes.Equal(got, want) {
		t.Fatalf("noop = % x, want % x", got, want)
	}
	if got, want := EncodeCommand(CmdNoop, []byte("ab")), []byte{0x01, 0x01, 'a', 'b'}; !bytes.Equal(got, want) {
		t.Fatalf("noop+body = % x, want % x", got, want)
	}
	typ, body, err := DecodeCommand([]byte{0x01, 0x01, 'x'})
	if err != nil || typ != CmdNoop || string(body) != "x" {
		t.Fatalf("decode: %v %q %v", typ, body, err)
	}
	for _, bad := range [][]byte{nil, {0x01}, {0x02, 0x01}} {
		if _, _, err := DecodeCommand(bad); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("decode % x: %v", bad, err)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte{0x01, 0x01})
	f.Add([]byte{0x01, 0x81, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, body, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeCommand(typ, body), b) {
			t.Fatalf("round trip of % x changed it", b)
		}
	})
}

func entries(from, to uint64, data []byte) []cluster.Entry {
	var out []cluster.Entry
	for i := from; i <= to; i++ {
		out = append(out, cluster.Entry{Index: i, Term: 1, Data: data})
	}
	return out
}

func TestFSM_ApplyBatch_RecordsIndex_SkipsReplay(t *testing.T) {
	t.Parallel()
	f, st := newTestFSM(t)
	noop := EncodeCommand(CmdNoop, nil)
	if res := f.ApplyBatch(entries(1, 5, noop)); len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	if idx, _ := st.LastApplied(); idx != 5 {
		t.Fatalf("last applied %d", idx)
	}
	// A replay after restart (entries at or below the stored index) is
	// harmless and does not move the index back.
	f.ApplyBatch(entries(3, 4, noop))
	if idx, _ := st.LastApplied(); idx != 5 {
		t.Fatalf("last applied after replay %d", idx)
	}
}

func TestFSM_UnknownCommand(t *testing.T) {
	t.Parallel()
	f, _ := newTestFSM(t)
	// An optional command (high bit) from a newer node is skipped.
	f.ApplyBatch([]cluster.Entry{{Index: 1, Data: EncodeCommand(cmdOptionalBit|5, nil)}})
	// An unknown mandatory command or garbage must stop this replica
	// rather than let it diverge.
	for _, data := range [][]byte{EncodeCommand(CommandType(77), nil), {0x09}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic for % x", data)
				}
			}()
			f.ApplyBatch([]cluster.Entry{{Index: 2, Data: data}})
		}()
	}
}

func TestFSM_SnapshotRestore(t *testing.T) {
	t.Parallel()
	a, _ := newTestFSM(t)
	a.ApplyBatch(entries(1, 9, EncodeCommand(CmdNoop, nil)))
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	b, st := newTestFSM(t)
	if err := b.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if idx, _ := st.LastApplied(); idx != 9 {
		t.Fatalf("restored index %d", idx)
	}
}
