// Package checker judges a chaos run: it reads the recorded client history
// (publishes, deliveries, acks and nemesis events, as JSON lines) and the
// final state every node holds after healing (broker.StateDump), and
// reports every broken guarantee with a readable detail, plus availability
// statistics per fault.
//
// The checks, each reported under its own Kind:
//   - no acknowledged publish is lost, and it sits at the seq its PubAck gave;
//   - every replica holds the identical message list (no forked sequence);
//   - sequences are dense (1..N) and each value is stored at most once;
//   - nothing is stored that no producer published, or that only failed;
//   - each producer's acknowledged values are stored in its publish order;
//   - consumers never skip, never go backwards past an acknowledged
//     message, and end in a consistent state;
//   - the stream log is linearizable: exactly over the whole history, and
//     with porcupine over sampled windows (with its HTML view on failure).
//
// The final log is taken as ground truth for what took effect: it is the
// result of a read of the whole log after every node quiesced, so it is part
// of the history. That settles which publish with an unknown outcome took
// effect, which keeps the linearizability model deterministic and cheap.
//
// The package does no I/O besides the history codec and WriteArtifacts: it
// never starts processes, talks to nodes or injects faults (the harness
// does), and it never reads state files itself (broker.ReadState does).
package checker
