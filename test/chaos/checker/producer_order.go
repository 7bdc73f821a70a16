package checker

// checkProducerOrder reports, for each producer, acknowledged values
// stored at a lower seq than an acknowledged value it published before.
// Each producer publishes one value after another, so its acks must come
// back with increasing seqs. Values never acknowledged are left out: a
// publish that timed out may legitimately be stored later.
func (c *checker) checkProducerOrder() {
	for _, p := range sortedKeys(c.h.producers) {
		var prev *Event
		for _, vi := range c.h.producers[p] {
			oks := vi.okAttempts(c.h.ev)
			if len(oks) == 0 {
				continue
			}
			e := &c.h.ev[oks[0]]
			if prev != nil && e.Seq <= prev.Seq {
				c.r.add(KindProducerOrder, "%s published %q (acked seq %d at %s) before %q, which was acked seq %d",
					p, prev.Value, prev.Seq, at(prev.Return), e.Value, e.Seq)
			}
			prev = e
		}
	}
}
