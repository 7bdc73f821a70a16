package checker

import (
	"cmp"
	"slices"
)

// valueInfo gathers the publish attempts of one logical message.
type valueInfo struct {
	value     string
	producer  string
	attempts  []int // history indices, by call time
	firstCall int64
}

// okAttempts returns the attempts that got a PubAck.
func (v *valueInfo) okAttempts(h []Event) []int {
	var out []int
	for _, i := range v.attempts {
		if h[i].Outcome == OutcomeOK {
			out = append(out, i)
		}
	}
	return out
}

// histIndex indexes a history for the checks.
type histIndex struct {
	ev        []Event
	values    map[string]*valueInfo
	producers map[string][]*valueInfo // each producer's values in publish order
	nemeses   []int                   // history indices, by start
	end       int64                   // the latest time in the history
}

// indexHistory builds the index and reports malformed events.
func (c *checker) indexHistory(h []Event) *histIndex {
	ix := &histIndex{ev: h, values: make(map[string]*valueInfo), producers: make(map[string][]*valueInfo)}
	st := &c.r.Stats
	st.Events = len(h)
	for i := range h {
		e := &h[i]
		ix.end = max(ix.end, e.Call, e.Return)
		if e.Return < e.Call && (e.Kind != EventNemesis || e.Return != 0) {
			c.r.add(KindHistory, "event %d (%s by %s) returns at %s before its call at %s", i, e.Kind, e.Client, at(e.Return), at(e.Call))
		}
		switch e.Kind {
		case EventPublish:
			c.indexPublish(ix, i)
		case EventDeliver:
			st.Deliveries++
		case EventAck:
			st.Acks++
		case EventNemesis:
			ix.nemeses = append(ix.nemeses, i)
		default:
			c.r.add(KindHistory, "event %d has unknown kind %q", i, e.Kind)
		}
	}
	for _, v := range ix.values {
		slices.SortStableFunc(v.attempts, func(a, b int) int { return cmp.Compare(h[a].Call, h[b].Call) })
		v.firstCall = h[v.attempts[0]].Call
		ix.producers[v.producer] = append(ix.producers[v.producer], v)
		if len(v.okAttempts(h)) > 0 {
			st.AckedValues++
		}
	}
	for _, vs := range ix.producers {
		slices.SortFunc(vs, func(a, b *valueInfo) int {
			return cmp.Or(cmp.Compare(a.firstCall, b.firstCall), cmp.Compare(a.value, b.value))
		})
	}
	slices.SortStableFunc(ix.nemeses, func(a, b int) int { return cmp.Compare(h[a].Call, h[b].Call) })
	st.Values = len(ix.values)
	return ix
}

func (c *checker) indexPublish(ix *histIndex, i int) {
	e := &ix.ev[i]
	st := &c.r.Stats
	st.PublishAttempts++
	switch e.Outcome {
	case OutcomeOK:
		st.OKAttempts++
	case OutcomeFail:
		st.FailedAttempts++
	case OutcomeUnknown:
		st.UnknownAttempts++
	default:
		c.r.add(KindHistory, "event %d: %s's publish has outcome %q", i, e.Client, e.Outcome)
		return
	}
	if e.Value == "" {
		c.r.add(KindHistory, "event %d: %s's publish has no value", i, e.Client)
		return
	}
	v := ix.values[e.Value]
	if v == nil {
		v = &valueInfo{value: e.Value, producer: e.Client}
		ix.values[e.Value] = v
	} else if v.producer != e.Client {
		c.r.add(KindHistory, "value %q is published by both %s and %s", e.Value, v.producer, e.Client)
		return
	}
	v.attempts = append(v.attempts, i)
}
