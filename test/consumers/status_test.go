package consumers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumers_PullStatuses checks the status messages a pull request can
// get, as stock clients see them: through nats.go jetstream where it
// surfaces them (the 409 refusals end a Fetch with an error naming them;
// "Consumer Deleted" with ErrConsumerDeleted; "Message Size Exceeds
// MaxBytes" quietly), and on a plain inbox where it does not (100 idle
// heartbeats, 404, 408 with the pending headers, 400). Also headers_only
// deliveries.
func TestConsumers_PullStatuses(t *testing.T) {
	tg := newTarget(t)
	nc, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "ST", Subjects: []string{"st.>"}, Storage: jetstream.MemoryStorage})
	// fetchErr runs a Fetch that must end, without messages, with an error
	// containing want.
	fetchErr := func(t *testing.T, b jetstream.MessageBatch, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		var n int
		for range b.Messages() {
			n++
		}
		if err := b.Error(); err == nil || !strings.Contains(err.Error(), want) || n != 0 {
			t.Fatalf("fetch ended with %d messages and error %v, want none and %q", n, err, want)
		}
	}

	t.Run("request limits", func(t *testing.T) {
		c := mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{
			Durable: "LIMITS", AckPolicy: jetstream.AckExplicitPolicy,
			MaxRequestBatch: 2, MaxRequestExpires: scaled(3 * time.Second),
		})
		b, err := c.Fetch(5, jetstream.FetchMaxWait(scaled(time.Second)))
		fetchErr(t, b, err, "Exceeded MaxRequestBatch of 2")
		b, err = c.Fetch(1, jetstream.FetchMaxWait(scaled(4*time.Second)))
		fetchErr(t, b, err, "Exceeded MaxRequestExpires of "+scaled(3*time.Second).String())
		// FetchBytes asks for a batch of 1,000,000: no batch cap here.
		c = mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "LIMITB", AckPolicy: jetstream.AckExplicitPolicy, MaxRequestMaxBytes: 100})
		b, err = c.FetchBytes(1000, jetstream.FetchMaxWait(scaled(time.Second)))
		fetchErr(t, b, err, "Exceeded MaxRequestMaxBytes of 100")
	})

	t.Run("max waiting", func(t *testing.T) {
		c := mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "WAIT1", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 1})
		first, err := c.Fetch(1, jetstream.FetchMaxWait(scaled(2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		waitNumWaiting(t, c, 1)
		b, err := c.Fetch(1, jetstream.FetchMaxWait(scaled(5*time.Second)))
		fetchErr(t, b, err, "Exceeded MaxWaiting")
		if got := drain(t, first); len(got) != 0 {
			t.Fatalf("first request got %d messages", len(got))
		}
	})

	t.Run("consumer deleted", func(t *testing.T) {
		c := mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "GONE", AckPolicy: jetstream.AckExplicitPolicy})
		b, err := c.Fetch(1, jetstream.FetchMaxWait(60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		waitNumWaiting(t, c, 1)
		if err := js.DeleteConsumer(ctxT(t, 10*time.Second), "ST", "GONE"); err != nil {
			t.Fatal(err)
		}
		select {
		case _, ok := <-b.Messages():
			if ok {
				t.Fatal("got a message from a deleted consumer")
			}
		case <-time.After(scaled(10 * time.Second)):
			t.Fatal("waiting fetch not ended within 10s of the delete")
		}
		if err := b.Error(); !errors.Is(err, jetstream.ErrConsumerDeleted) {
			t.Fatalf("fetch ended with %v, want ErrConsumerDeleted", err)
		}
	})

	t.Run("message larger than max_bytes", func(t *testing.T) {
		c := mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "BIG", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "st.big"})
		mustPublish(t, pjs, "st.big", make([]byte, 1024))
		start := time.Now()
		// The 409 ends the Fetch at once and quietly, long before expiry.
		if got := drainBytes(t, c, 100, scaled(20*time.Second)); len(got) != 0 {
			t.Fatalf("got %d messages", len(got))
		}
		if d := time.Since(start); d > scaled(10*time.Second) {
			t.Fatalf("FetchBytes ended after %v, want the 409 at once", d)
		}
	})

	t.Run("headers only", func(t *testing.T) {
		c := mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "HDRS", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "st.hdrs", HeadersOnly: true})
		msg := nats.NewMsg("st.hdrs")
		msg.Data = []byte("hello")
		msg.Header.Set("Key", "value")
		if _, err := pjs.PublishMsg(ctxT(t, 10*time.Second), msg); err != nil {
			t.Fatal(err)
		}
		m := fetchOne(t, c, 10*time.Second)
		if len(m.Data()) != 0 || m.Headers().Get("Nats-Msg-Size") != "5" || m.Headers().Get("Key") != "value" || m.Subject() != "st.hdrs" {
			t.Fatalf("headers_only delivery: subject %s data %q headers %v", m.Subject(), m.Data(), m.Headers())
		}
		mustDoubleAck(t, m)
	})

	// The rest go to a plain inbox.
	mustCreateConsumer(t, js, "ST", jetstream.ConsumerConfig{Durable: "RAW", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "st.raw"})
	next := "$JS.API.CONSUMER.MSG.NEXT.ST.RAW"
	// pull sends one request and returns the inbox it is answered on.
	pull := func(t *testing.T, body string) *nats.Subscription {
		t.Helper()
		inbox := nats.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := nc.PublishRequest(next, inbox, []byte(body)); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	status := func(t *testing.T, sub *nats.Subscription, code, text string, hdrs ...string) {
		t.Helper()
		m, err := sub.NextMsg(scaled(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for %s %s: %v", code, text, err)
		}
		if got := m.Header.Get("Status"); got != code || m.Header.Get("Description") != text || len(m.Data) != 0 {
			t.Fatalf("got status %q %q (data %q), want %s %s", got, m.Header.Get("Description"), m.Data, code, text)
		}
		for i := 0; i+1 < len(hdrs); i += 2 {
			if got := m.Header.Get(hdrs[i]); got != hdrs[i+1] {
				t.Fatalf("%s %s: %s %q, want %q (headers %v)", code, text, hdrs[i], got, hdrs[i+1], m.Header)
			}
		}
	}

	t.Run("404 no wait", func(t *testing.T) {
		status(t, pull(t, `{"batch":2,"no_wait":true}`), "404", "No Messages")
	})
	t.Run("408 with pending", func(t *testing.T) {
		sub := pull(t, `{"batch":3,"expires":300000000}`)
		status(t, sub, "408", "Request Timeout", "Nats-Pending-Messages", "3", "Nats-Pending-Bytes", "0")
	})
	t.Run("100 idle heartbeat", func(t *testing.T) {
		sub := pull(t, `{"batch":1,"expires":2000000000,"idle_heartbeat":200000000}`)
		status(t, sub, "100", "Idle Heartbeat")
		status(t, sub, "100", "Idle Heartbeat")
	})
	t.Run("400", func(t *testing.T) {
		sub := pull(t, `{"batch":1,"expires":1000000000,"idle_heartbeat":900000000}`)
		status(t, sub, "400", "Bad Request - heartbeat value too large")
	})
}

// drainBytes runs one FetchBytes and returns its messages; the batch must
// end without error.
func drainBytes(t *testing.T, c jetstream.Consumer, maxBytes int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	b, err := c.FetchBytes(maxBytes, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatalf("fetch bytes %d: %v", maxBytes, err)
	}
	return drain(t, b)
}
