package broker

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

func queued(subject string, size int) pendingPub {
	return pendingPub{reply: "r." + subject, msg: PublishMsg{Subject: subject, Data: make([]byte, size)}}
}

func subjects(batch []pendingPub) string {
	s := ""
	for _, p := range batch {
		s += p.msg.Subject + " "
	}
	return s
}

func TestPubQueue_TakeLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		sizes             []int
		maxMsgs, maxBytes int
		want              []string // the batches, in order
	}{
		{"all at once", []int{1, 1, 1}, 10, 100, []string{"0 1 2 "}},
		{"by count", []int{1, 1, 1, 1, 1}, 2, 100, []string{"0 1 ", "2 3 ", "4 "}},
		{"by bytes", []int{40, 40, 40, 10}, 10, 100, []string{"0 1 ", "2 3 "}},
		{"exactly the bytes", []int{50, 50, 1}, 10, 100, []string{"0 1 ", "2 "}},
		{"a publish larger than a batch goes alone", []int{500, 1, 500, 500}, 10, 100, []string{"0 ", "1 ", "2 ", "3 "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := newPubQueue(100, make(chan struct{}))
			for i, size := range tc.sizes {
				q.put(queued(strconv.Itoa(i), size))
			}
			var got []string
			for range tc.want {
				got = append(got, subjects(q.take(tc.maxMsgs, tc.maxBytes)))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("batches %q, want %q", got, tc.want)
			}
			if n := len(q.items) - q.head; n != 0 {
				t.Fatalf("%d publishes left", n)
			}
		})
	}
}

// A batch is proposed and acknowledged while publishes keep arriving: they
// must never be written into it.
func TestPubQueue_BatchesStayIntact(t *testing.T) {
	t.Parallel()
	q := newPubQueue(1000, make(chan struct{}))
	for i := range 10 {
		q.put(queued(strconv.Itoa(i), 1))
	}
	part := q.take(4, 1<<20) // 0-3, six left
	for i := 10; i < 100; i++ {
		q.put(queued(strconv.Itoa(i), 1)) // appends after the six, then a new array
	}
	rest := q.take(1000, 1<<20) // 4-99: the queue is empty and starts a new array
	for i := 100; i < 200; i++ {
		q.put(queued(strconv.Itoa(i), 1))
	}
	last := q.take(1000, 1<<20)
	for _, c := range []struct {
		batch       []pendingPub
		first, last int
	}{{part, 0, 3}, {rest, 4, 99}, {last, 100, 199}} {
		if len(c.batch) != c.last-c.first+1 {
			t.Fatalf("batch from %d: %d publishes", c.first, len(c.batch))
		}
		for i, p := range c.batch {
			if want := strconv.Itoa(c.first + i); p.msg.Subject != want || p.reply != "r."+want {
				t.Fatalf("batch from %d, publish %d: %q %q, want %q", c.first, i, p.msg.Subject, p.reply, want)
			}
		}
	}
}

// A queue that is never empty, because the publishers stay ahead of the
// worker, must not keep every publish it ever held.
func TestPubQueue_NeverEmptyDoesNotGrow(t *testing.T) {
	t.Parallel()
	q := newPubQueue(1<<16, make(chan struct{}))
	for i := range 100 {
		q.put(queued(strconv.Itoa(i), 1))
	}
	for i := range 100_000 {
		q.put(queued(strconv.Itoa(i), 1))
		if i%10 == 9 {
			if b := q.take(10, 1<<20); len(b) != 10 {
				t.Fatalf("took %d", len(b))
			}
		}
	}
	if n := len(q.items) - q.head; n != 100 {
		t.Fatalf("%d queued, want 100", n)
	}
	if c := cap(q.items); c > 1000 {
		t.Fatalf("the queue's array holds %d publishes for 100 queued", c)
	}
}

// A full queue makes put wait until a take makes room, and put gives up
// once the service stops; take returns nil once it stops.
func TestPubQueue_FullWaitsAndStop(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	q := newPubQueue(2, stop)
	q.put(queued("a", 1))
	q.put(queued("b", 1))
	done := make(chan bool)
	go func() { done <- q.put(queued("c", 1)) }()
	waitForSpaceWaiter(t, q)
	select {
	case <-done:
		t.Fatal("put into a full queue did not wait")
	default:
	}
	if got := subjects(q.take(1, 1<<20)); got != "a " {
		t.Fatalf("took %q", got)
	}
	if ok := <-done; !ok {
		t.Fatal("put after a take: false")
	}
	if got := subjects(q.take(10, 1<<20)); got != "b c " {
		t.Fatalf("took %q", got)
	}
	q.put(queued("d", 1))
	q.put(queued("e", 1))
	go func() { done <- q.put(queued("f", 1)) }()
	waitForSpaceWaiter(t, q)
	close(stop)
	if ok := <-done; ok {
		t.Fatal("put into a full queue of a stopped service: true")
	}
	q.take(10, 1<<20)
	if b := q.take(10, 1<<20); b != nil {
		t.Fatalf("take on an empty stopped queue: %q", subjects(b))
	}
}

// waitForSpaceWaiter polls until a put found q full and waits for room.
func waitForSpaceWaiter(t *testing.T, q *pubQueue) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		q.mu.Lock()
		waiting := q.space != nil
		q.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no put waits for room in the full queue")
		}
		runtime.Gosched()
	}
}

// Publishers and one worker at once: every publish arrives once, and each
// publisher's in the order it made them.
func TestPubQueue_Concurrent(t *testing.T) {
	t.Parallel()
	const publishers, each = 4, 5000
	stop := make(chan struct{})
	q := newPubQueue(64, stop)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.put(pendingPub{reply: strconv.Itoa(p), msg: PublishMsg{Subject: strconv.Itoa(i)}})
			}
		}()
	}
	next := make([]int, publishers)
	for got := 0; got < publishers*each; {
		batch := q.take(100, 1<<20)
		if len(batch) == 0 || len(batch) > 100 {
			t.Fatalf("batch of %d", len(batch))
		}
		for _, m := range batch {
			p, _ := strconv.Atoi(m.reply)
			if m.msg.Subject != strconv.Itoa(next[p]) {
				t.Fatalf("publisher %d: got %s, want %d", p, m.msg.Subject, next[p])
			}
			next[p]++
		}
		got += len(batch)
	}
	wg.Wait()
	close(stop)
}
