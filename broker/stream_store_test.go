package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/flotilla/flotilla/storage"
)

// seedPurge creates stream P on p.> with messages 1..9 on p.a, p.b, p.c
// in turn (a: 1,4,7  b: 2,5,8  c: 3,6,9).
func seedPurge(t *testing.T) *streamHarness {
	t.Helper()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "P", Subjects: []string{"p.>"}})
	for i := range 9 {
		h.mustPub("p."+string(rune('a'+i%3)), nil, "x")
	}
	return h
}

func TestFSM_ApplyStreamPurge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    PurgeRequest
		purged uint64
		left   []uint64
	}{
		{"all", PurgeRequest{}, 9, nil},
		{"filter covering the stream", PurgeRequest{Subject: ">"}, 9, nil},
		{"seq", PurgeRequest{Seq: 4}, 3, []uint64{4, 5, 6, 7, 8, 9}},
		{"keep", PurgeRequest{Keep: 2}, 7, []uint64{8, 9}},
		{"keep more than stored", PurgeRequest{Keep: 20}, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"subject", PurgeRequest{Subject: "p.a"}, 3, []uint64{2, 3, 5, 6, 8, 9}},
		{"subject keep", PurgeRequest{Subject: "p.a", Keep: 1}, 2, []uint64{2, 3, 5, 6, 7, 8, 9}},
		{"subject seq", PurgeRequest{Subject: "p.b", Seq: 6}, 2, []uint64{1, 3, 4, 6, 7, 8, 9}},
		{"wildcard", PurgeRequest{Subject: "p.*"}, 9, nil},
		{"subject missing", PurgeRequest{Subject: "p.zzz"}, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := seedPurge(t)
			if got := h.apply1(EncodeStreamPurge("P", tt.req, h.now)); got != tt.purged {
				t.Fatalf("purged %v, want %d", got, tt.purged)
			}
			if got := h.seqs("P"); !reflect.DeepEqual(got, tt.left) {
				t.Fatalf("left %v, want %v", got, tt.left)
			}
			st := h.state("P")
			if st.Msgs != uint64(len(tt.left)) || st.LastSeq != 9 {
				t.Fatalf("state %+v", st)
			}
			if len(tt.left) == 0 {
				// §2.4: after purging everything first = last+1, first_ts zero.
				if st.FirstSeq != 10 || !st.FirstTime.IsZero() || st.NumSubjects != 0 || st.Bytes != 0 {
					t.Fatalf("empty state %+v", st)
				}
			} else if st.FirstSeq != tt.left[0] {
				t.Fatalf("first seq %d", st.FirstSeq)
			}
			// The next message continues the sequence.
			if seq := h.mustPub("p.a", nil, "y"); seq != 10 {
				t.Fatalf("next seq %d", seq)
			}
		})
	}
}

func TestFSM_ApplyStreamPurge_WildcardWithKeepAndSeq(t *testing.T) {
	t.Parallel()
	h := newTestStreamFSM(t)
	h.mustCreate(StreamConfig{Name: "P", Subjects: []string{"p.>", "q"}})
	for _, s := range []string{"p.a.1", "q", "p.b.1", "p.a.2", "q", "p.b.2"} {
		h.mustPub(s, nil, "x")
	}
	if n := h.apply1(EncodeStreamPurge("P", PurgeRequest{Subject: "p.*.*", Keep: 1}, h.now)); n != uint64(3) {
		t.Fatalf("purged %v", n)
	}
	if got := h.seqs("P"); !reflect.DeepEqual(got, []uint64{2, 5, 6}) {
		t.Fatalf("left %v", got)
	}
	if n := h.apply1(EncodeStreamPurge("P", PurgeRequest{Subject: "p.>", Seq: 6}, h.now)); n != uint64(0) {
		t.Fatalf("purged %v", n)
	}
}

func TestFSM_ApplyStreamPurge_SeqPastEnd(t *testing.T) {
	t.Parallel()
	h := seedPurge(t)
	if n := h.apply1(EncodeStreamPurge("P", PurgeRequest{Seq: 100}, h.now)); n != uint64(9) {
		t.Fatalf("purged %v", n)
	}
	if st := h.state("P"); st.FirstSeq != 100 || st.LastSeq != 99 || st.Msgs != 0 {
		t.Fatalf("state %+v", st)
	}
	if seq := h.mustPub("p.a", nil, "x"); seq != 100 {
		t.Fatalf("next seq %d", seq)
	}
}

func TestFSM_ApplyStreamPurge_Rejections(t *testing.T) {
	t.Parallel()
	h := seedPurge(t)
	h.mustCreate(StreamConfig{Name: "D", DenyPurge: true})
	tests := []struct {
		name   string
		stream string
		req    PurgeRequest
		code   uint16
		desc   string
	}{
		{"missing", "NOPE", PurgeRequest{}, JSErrStreamNotFound, ""},
		{"deny purge", "D", PurgeRequest{}, JSErrPurgeFailed, "stream purge not permitted"},
		{"seq and keep", "P", PurgeRequest{Seq: 2, Keep: 2}, JSErrBadRequest, ""},
		{"bad filter", "P", PurgeRequest{Subject: "p..a"}, JSErrBadRequest, ""},
	}
	for _, tt := range tests {
		wantErrCode(t, tt.name, apiErr(t, h.apply1(EncodeStreamPurge(tt.stream, tt.req, h.now))), tt.code, tt.desc)
	}
}

func TestFSM_ApplyMsgDelete(t *testing.T) {
	t.Parallel()
	h := seedPurge(t)
	h.mustCreate(StreamConfig{Name: "D", DenyDelete: true})
	for _, seq := range []uint64{1, 5, 9} {
		if res := h.apply1(EncodeMsgDelete("P", seq)); res != nil {
			t.Fatalf("delete %d: %v", seq, res)
		}
	}
	st := h.state("P")
	if st.Msgs != 6 || st.FirstSeq != 2 || st.LastSeq != 9 || st.NumDeleted != 2 {
		t.Fatalf("state %+v", st)
	}
	// The subject index follows: p.c's last is now 6, p.b's first is 2.
	if m, e := h.f.GetMsg("P", MsgGetRequest{LastFor: "p.c"}); e != nil || m.Seq != 6 {
		t.Fatalf("last p.c %+v %v", m, e)
	}
	if seq := h.mustPub("p.z", nil, "x"); seq != 10 {
		t.Fatalf("deleting the last message must not reuse its sequence: %d", seq)
	}
	wantErrCode(t, "again", apiErr(t, h.apply1(EncodeMsgDelete("P", 5))), JSErrSequenceNotFound, "sequence 5 not found")
	wantErrCode(t, "missing stream", apiErr(t, h.apply1(EncodeMsgDelete("NOPE", 1))), JSErrStreamNotFound, "")
	wantErrCode(t, "deny delete", apiErr(t, h.apply1(EncodeMsgDelete("D", 1))), JSErrMsgDeleteFailed, "message delete not permitted")
}

func TestFSM_ApplyStreamDelete(t *testing.T) {
	t.Parallel()
	h := seedPurge(t)
	h.mustPub("p.a", hdr("Nats-Msg-Id", "x"), "")
	if res := h.apply1(EncodeStreamDelete("P")); res != nil {
		t.Fatalf("delete: %v", res)
	}
	if _, e := h.f.StreamInfo("P"); e == nil || e.ErrCode != JSErrStreamNotFound {
		t.Fatalf("info after delete: %v", e)
	}
	if _, ok := h.f.StreamForSubject([]byte("p.a")); ok {
		t.Fatal("deleted stream still captures")
	}
	_ = h.st.View(func(tx *storage.Tx) error {
		for _, b := range newStreamBuckets("P").all() {
			if tx.Bucket(b) != nil {
				t.Fatalf("bucket %s left behind", b)
			}
		}
		return nil
	})
	wantErrCode(t, "again", apiErr(t, h.apply1(EncodeStreamDelete("P"))), JSErrStreamNotFound, "stream not found")
	// Recreating starts from scratch, dedup ids included.
	h.mustCreate(StreamConfig{Name: "P", Subjects: []string{"p.>"}})
	if ack := h.pub("p.a", hdr("Nats-Msg-Id", "x"), ""); ack.Seq != 1 || ack.Duplicate {
		t.Fatalf("recreated %+v", ack)
	}
}

func TestStreamRecords_RoundTripAndChecksum(t *testing.T) {
	t.Parallel()
	c := streamCounters{first: 3, last: 9, firstTime: 11, lastTime: 12, msgs: 5, bytes: 100, subjects: 2, lastMsgID: []byte("id")}
	rec := c.encode(nil)
	if len(rec) != stateRecordLen(&c) {
		t.Fatalf("state record %d bytes, computed %d", len(rec), stateRecordLen(&c))
	}
	got, err := decodeStreamCounters(rec)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("state round trip %+v %v", got, err)
	}
	m := pubMsg{subject: []byte("a.b"), header: []byte("NATS/1.0\r\n\r\n"), data: []byte("payload")}
	mrec := encodeMsgRecord(nil, 42, &m)
	if len(mrec) != msgRecordLen(&m) {
		t.Fatalf("msg record %d bytes, computed %d", len(mrec), msgRecordLen(&m))
	}
	ts, dm, err := decodeMsgRecord(mrec)
	if err != nil || ts != 42 || !bytes.Equal(dm.subject, m.subject) || !bytes.Equal(dm.header, m.header) || !bytes.Equal(dm.data, m.data) {
		t.Fatalf("msg round trip %d %+v %v", ts, dm, err)
	}
	created := time.Unix(0, 77).UTC()
	drec := encodeDefRecord(5, created, []byte(`{}`))
	if idx, when, js, err := decodeDefRecord(drec); err != nil || idx != 5 || !when.Equal(created) || string(js) != "{}" {
		t.Fatalf("def round trip %d %v %s %v", idx, when, js, err)
	}
	// Every flipped bit is caught.
	for _, r := range [][]byte{rec, mrec, drec} {
		for i := range r {
			bad := bytes.Clone(r)
			bad[i] ^= 0x10
			_, err1 := decodeStreamCounters(bad)
			_, _, err2 := decodeMsgRecord(bad)
			_, _, _, err3 := decodeDefRecord(bad)
			if !errors.Is(err1, errCorruptRecord) || !errors.Is(err2, errCorruptRecord) || !errors.Is(err3, errCorruptRecord) {
				t.Fatalf("flip of byte %d not detected: %v %v %v", i, err1, err2, err3)
			}
		}
	}
}

func TestFSM_CorruptMessageIsReported(t *testing.T) {
	t.Parallel()
	h := seedPurge(t)
	// Damage message 1 on disk behind the FSM's back.
	if err := h.st.Update(func(tx *storage.Tx) error {
		b := tx.Bucket(newStreamBuckets("P").msgs)
		rec := bytes.Clone(b.Get(seqKey(nil, 1)))
		rec[len(rec)-1] ^= 1
		return b.Put(seqKey(nil, 1), rec)
	}); err != nil {
		t.Fatal(err)
	}
	if _, e := h.f.GetMsg("P", MsgGetRequest{Seq: 1}); e == nil || e.ErrCode != JSErrStreamGeneral {
		t.Fatalf("read of a corrupt record: %v", e)
	}
	// Applying a command that must read it stops the replica.
	defer func() {
		if recover() == nil {
			t.Fatal("apply over a corrupt record did not panic")
		}
	}()
	h.apply1(EncodeMsgDelete("P", 1))
}

func TestArena_NeverReusesWithinATransaction(t *testing.T) {
	t.Parallel()
	var a arena
	seen := map[*byte]bool{}
	for i := range 10000 {
		b := a.alloc(1 + i%100)
		if cap(b) != len(b) {
			t.Fatal("arena buffer has spare capacity")
		}
		if seen[&b[0]] {
			t.Fatal("arena reused a buffer")
		}
		seen[&b[0]] = true
	}
	big := a.alloc(arenaChunk)
	if len(big) != arenaChunk {
		t.Fatal("big alloc")
	}
	a.reset()
	if len(a.chunks) == 0 || len(a.chunks)*arenaChunk > arenaKeep || a.cur != 0 {
		t.Fatalf("reset kept %d chunks", len(a.chunks))
	}
	for _, c := range a.chunks {
		if len(c) != 0 {
			t.Fatal("reset chunk not empty")
		}
	}
}

// checkStreamIndexes rebuilds what a stream's counters, subject records
// and subject chains must be from its messages, and compares.
func checkStreamIndexes(t *testing.T, st *storage.Store, name string) {
	t.Helper()
	checkStreamIndexesLinks(t, st, name, false)
}

// checkStreamIndexesLinks checks as checkStreamIndexes; with
// storedImplied, links to seq+1 may also be stored (files written before
// those were implied).
func checkStreamIndexesLinks(t *testing.T, st *storage.Store, name string, storedImplied bool) {
	t.Helper()
	type subj struct {
		seqs []uint64
	}
	err := st.View(func(tx *storage.Tx) error {
		b := newStreamBuckets(name)
		var c streamCounters
		if rec := tx.Get(streamStateBucket, []byte(name)); rec != nil {
			var err error
			if c, err = decodeStreamCounters(rec); err != nil {
				return err
			}
		}
		subjects := map[string]*subj{}
		var msgs, size uint64
		var first, maxSeq uint64
		var firstTime int64
		err := tx.ForEach(b.msgs, func(k, v []byte) error {
			ts, m, err := decodeMsgRecord(v)
			if err != nil {
				return err
			}
			seq := seqOf(k)
			if msgs == 0 {
				first, firstTime = seq, ts
			}
			msgs++
			size += msgSize(&m)
			maxSeq = seq
			sj := subjects[string(m.subject)]
			if sj == nil {
				sj = &subj{}
				subjects[string(m.subject)] = sj
			}
			sj.seqs = append(sj.seqs, seq)
			return nil
		})
		if err != nil {
			return err
		}
		if msgs == 0 {
			first = c.last + 1
			if c.first == 0 && c.last == 0 {
				first = 0 // never had a message (§2.4: first_seq 0)
			}
		}
		if c.msgs != msgs || c.bytes != size || c.first != first || c.firstTime != firstTime || c.last < maxSeq || c.subjects != uint64(len(subjects)) {
			t.Fatalf("%s counters %+v; messages say msgs %d bytes %d first %d (%d) max %d subjects %d",
				name, c, msgs, size, first, firstTime, maxSeq, len(subjects))
		}
		wantLinks := map[uint64]uint64{}
		for s, sj := range subjects {
			n, f, l, ok := decodeSubjRecord(tx.Get(b.subjects, []byte(s)))
			if !ok || n != uint64(len(sj.seqs)) || f != sj.seqs[0] || l != sj.seqs[len(sj.seqs)-1] {
				t.Fatalf("%s subject %q record %d %d %d %v, messages %v", name, s, n, f, l, ok, sj.seqs)
			}
			for i := 0; i+1 < len(sj.seqs); i++ {
				wantLinks[sj.seqs[i]] = sj.seqs[i+1]
			}
		}
		_ = tx.ForEach(b.subjects, func(k, _ []byte) error {
			if subjects[string(k)] == nil {
				t.Fatalf("%s: record for subject %q without messages", name, k)
			}
			return nil
		})
		gotLinks := map[uint64]uint64{}
		_ = tx.ForEach(b.subjNext, func(k, v []byte) error {
			gotLinks[seqOf(k)] = seqOf(v)
			return nil
		})
		for seq, next := range wantLinks {
			if _, ok := gotLinks[seq]; next == seq+1 && (!storedImplied || !ok) {
				delete(wantLinks, seq) // implied, not stored
			}
		}
		if !reflect.DeepEqual(gotLinks, wantLinks) && (len(gotLinks) > 0 || len(wantLinks) > 0) {
			t.Fatalf("%s chains\n got %v\nwant %v", name, gotLinks, wantLinks)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// randomStreamCommands returns a seeded mix of every stream command
// against stream R (subjects r.<a-e>), with limits that change on the way.
func randomStreamCommands(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	now := testEpoch
	last := "r.a"
	subject := func() string { // runs on one subject half the time: implied links
		if rng.IntN(2) == 0 {
			last = "r." + string(rune('a'+rng.IntN(5)))
		}
		return last
	}
	pubs := 0
	cmds := [][]byte{EncodeStreamCreate(StreamConfig{Name: "R", Subjects: []string{"r.*"}, AllowRollup: true, MaxAge: time.Minute, Duplicates: 10 * time.Second}, now)}
	for range n {
		now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		switch op := rng.IntN(20); {
		case op < 12:
			var msgs []PublishMsg
			for range 1 + rng.IntN(8) {
				m := PublishMsg{Subject: subject(), Data: bytes.Repeat([]byte("d"), rng.IntN(20))}
				switch r := rng.IntN(60); {
				case r == 0:
					m.Header = hdr("Nats-Rollup", "all")
				case r < 3:
					m.Header = hdr("Nats-Rollup", "sub")
				case r < 15:
					m.Header = hdr("Nats-Msg-Id", fmt.Sprint(rng.IntN(30)))
				case r < 18:
					m.Header = hdr("Nats-Expected-Last-Subject-Sequence", fmt.Sprint(rng.IntN(40)))
				}
				msgs = append(msgs, m)
				pubs++
			}
			cmds = append(cmds, EncodePublishBatch(now, msgs))
		case op < 15:
			// Near where the stream's sequence roughly is by now.
			cmds = append(cmds, EncodeMsgDelete("R", uint64(max(1, pubs*9/10-rng.IntN(10)))))
		case op < 17:
			req := PurgeRequest{}
			switch rng.IntN(4) {
			case 0:
				req.Subject = subject()
			case 1:
				req.Subject = "r.*"
			}
			switch rng.IntN(3) {
			case 0:
				req.Keep = uint64(rng.IntN(5))
			case 1:
				req.Seq = uint64(max(1, pubs*9/10-rng.IntN(10)))
			}
			cmds = append(cmds, EncodeStreamPurge("R", req, now))
		case op < 19:
			cfg := StreamConfig{Name: "R", Subjects: []string{"r.*"}, AllowRollup: true, MaxAge: time.Minute, Duplicates: 10 * time.Second,
				MaxMsgs: int64(rng.IntN(200)), MaxBytes: int64(rng.IntN(5000)), MaxMsgsPerSubject: int64(rng.IntN(20))}
			if rng.IntN(3) == 0 {
				cfg.Discard = DiscardNew
			}
			cmds = append(cmds, EncodeStreamUpdate(cfg, now))
		default:
			cmds = append(cmds, EncodeExpire(now))
		}
	}
	return cmds
}

// Every command on its own batch, or all of them in one batch, or split
// at random: the results and the state are identical, and the indexes
// always agree with the messages. This is the determinism the replicas
// rely on (per-batch caches, flush order, arena reuse).
func TestFSM_RandomCommands_DeterministicAndConsistent(t *testing.T) {
	t.Parallel()
	hits := 0
	defer func() {
		if hits < 20 {
			t.Errorf("only %d message deletes hit a message", hits)
		}
	}()
	for seed := uint64(1); seed <= 4; seed++ {
		cmds := randomStreamCommands(seed, 600)
		one := newTestStreamFSM(t)
		var resOne []any
		for i, c := range cmds {
			resOne = append(resOne, one.apply1(c))
			if i%10 == 0 {
				checkStreamIndexes(t, one.st, "R")
			}
		}
		checkStreamIndexes(t, one.st, "R")

		all := newTestStreamFSM(t)
		resAll := all.apply(cmds...)

		split := newTestStreamFSM(t)
		rng := rand.New(rand.NewPCG(seed, 99))
		var resSplit []any
		for rest := cmds; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(30))
			resSplit = append(resSplit, split.apply(rest[:n]...)...)
			rest = rest[n:]
		}
		for i := range cmds {
			if !reflect.DeepEqual(resOne[i], resAll[i]) || !reflect.DeepEqual(resOne[i], resSplit[i]) {
				t.Fatalf("seed %d command %d: results differ\n%#v\n%#v\n%#v", seed, i, resOne[i], resAll[i], resSplit[i])
			}
		}
		a, b, c := one.f.Streams(), all.f.Streams(), split.f.Streams()
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, c) {
			t.Fatalf("seed %d: states differ\n%+v\n%+v\n%+v", seed, a[0].State, b[0].State, c[0].State)
		}
		if !reflect.DeepEqual(one.seqs("R"), all.seqs("R")) {
			t.Fatalf("seed %d: stored messages differ", seed)
		}
		checkStreamIndexes(t, all.st, "R")
		checkStreamIndexes(t, split.st, "R")
		deleted := 0
		for i, c := range cmds {
			if c[1] == byte(CmdMsgDelete) && resOne[i] == nil {
				deleted++
			}
		}
		t.Logf("seed %d: %d deletes hit, %d messages left", seed, deleted, a[0].State.Msgs)
		hits += deleted
	}
}

// A file written before links to seq+1 were implied has every link
// stored. Such a store reads and changes exactly as one written now: the
// same commands give the same results and states, and its indexes stay
// consistent (stored links win over implied ones). The test stores the
// implied links every 25 commands, as the old code would have.
func TestFSM_StoredImpliedLinksStillRead(t *testing.T) {
	t.Parallel()
	storeImplied := func(h *streamHarness) int {
		n := 0
		err := h.st.Update(func(tx *storage.Tx) error {
			b := newStreamBuckets("R")
			last := map[string]uint64{}
			var links [][2]uint64
			if err := tx.ForEach(b.msgs, func(k, v []byte) error {
				_, m, err := decodeMsgRecord(v)
				if err != nil {
					return err
				}
				seq := seqOf(k)
				if p, ok := last[string(m.subject)]; ok && p+1 == seq {
					links = append(links, [2]uint64{p, seq})
				}
				last[string(m.subject)] = seq
				return nil
			}); err != nil {
				return err
			}
			chain := tx.Bucket(b.subjNext)
			for _, l := range links {
				if err := chain.Put(binary.BigEndian.AppendUint64(nil, l[0]), binary.BigEndian.AppendUint64(nil, l[1])); err != nil {
					return err
				}
			}
			n = len(links)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for seed := uint64(11); seed <= 13; seed++ {
		cmds := randomStreamCommands(seed, 600)
		now := newTestStreamFSM(t)
		resNow := now.apply(cmds...)

		old := newTestStreamFSM(t)
		var resOld []any
		stored := 0
		for i, c := range cmds {
			resOld = append(resOld, old.apply1(c))
			if i%25 == 0 && i > 0 {
				stored += storeImplied(old)
				checkStreamIndexesLinks(t, old.st, "R", true)
			}
			if i%10 == 0 {
				checkStreamIndexesLinks(t, old.st, "R", true)
			}
		}
		checkStreamIndexesLinks(t, old.st, "R", true)
		if stored < 100 {
			t.Fatalf("seed %d: only %d implied links stored", seed, stored)
		}
		for i := range cmds {
			if !reflect.DeepEqual(resNow[i], resOld[i]) {
				t.Fatalf("seed %d command %d: results differ\n%#v\n%#v", seed, i, resNow[i], resOld[i])
			}
		}
		if a, b := now.f.Streams(), old.f.Streams(); !reflect.DeepEqual(a, b) || !reflect.DeepEqual(now.seqs("R"), old.seqs("R")) {
			t.Fatalf("seed %d: states differ\n%+v\n%+v", seed, a[0].State, b[0].State)
		}
		t.Logf("seed %d: %d implied links stored on the way", seed, stored)
	}
}
