package differential

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// CONNECT lines the scripts use. connect is what a protocol-1 client that
// understands headers sends; nats.go adds no_responders (connectNR).
const (
	connect        = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\n"
	connectNR      = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n"
	connectVerbose = "CONNECT {\"verbose\":true,\"pedantic\":false,\"protocol\":1,\"headers\":true}\r\n"
	connectNoHdr   = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n"
	connectNoEcho  = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"echo\":false}\r\n"
)

// pub formats a PUB with a correct size; reply may be empty.
func pub(subject, reply, payload string) string {
	if reply != "" {
		subject += " " + reply
	}
	return fmt.Sprintf("PUB %s %d\r\n%s\r\n", subject, len(payload), payload)
}

// hpub formats an HPUB with correct sizes; hdr is the whole header block.
func hpub(subject, reply, hdr, payload string) string {
	if reply != "" {
		subject += " " + reply
	}
	return fmt.Sprintf("HPUB %s %d %d\r\n%s%s\r\n", subject, len(hdr), len(hdr)+len(payload), hdr, payload)
}

// authCfg turns on user/password authentication.
var authCfg = serverConfig{User: "alice", Pass: "s3cret"}

// Known differences between Flotilla and nats-server v2.15.2, one per root
// cause. Scripts carrying one still run and log their diff; the lead clears
// a marker once Flotilla matches (a script that stops differing fails until
// its marker is removed).

// scripts is the table of protocol conversations. Each ends every step with
// a PING/PONG round trip (or a close), so no step waits on time.
var scripts = []script{
	// Handshake and options.
	{name: "handshake", steps: []step{on("A", connect)}},
	{name: "handshake_nats_go_style", steps: []step{on("A", connectNR+"PING\r\n")}},
	{name: "connect_empty_object", steps: []step{on("A", "CONNECT {}\r\n")}},
	{name: "connect_defaults_verbose_pedantic", steps: []step{
		on("A", "CONNECT {\"protocol\":1}\r\nSUB > 1\r\n"+pub("foo.*", "", "x")),
	}},
	{name: "verbose_ok_after_each_op", steps: []step{
		on("A", connectVerbose),
		on("A", "SUB foo 1\r\n"+pub("foo", "", "hi")+"UNSUB 1\r\n"+pub("foo", "", "gone")),
		on("A", hpub("foo", "", "NATS/1.0\r\n\r\n", "x")),
	}},
	{name: "verbose_with_errors", steps: []step{
		on("A", connectVerbose),
		on("A", "SUB foo..bar 1\r\n"+pub("foo.*", "", "x")+"UNSUB 99\r\n"),
	}},
	{name: "ping_before_connect_without_auth", steps: []step{
		on("A", "PING\r\n"),
		on("A", connect+"SUB foo 1\r\n"+pub("foo", "", "hi")),
	}},
	{name: "ops_before_connect_without_auth", steps: []step{
		on("A", "SUB foo 1\r\n"+pub("foo", "", "early")),
		on("A", connect+pub("foo", "", "late")),
	}},
	{name: "second_connect", steps: []step{
		on("A", connect+"SUB foo 1\r\n"),
		on("A", connectVerbose+pub("foo", "", "hi")),
	}},
	{name: "second_connect_merges_options", steps: []step{
		on("A", connectVerbose),
		on("A", "CONNECT {\"protocol\":1}\r\nSUB foo 1\r\n"+pub("foo", "", "hi")),
	}},
	{name: "connect_invalid_json", steps: []step{on("A", "CONNECT {bad\r\n")}},
	{name: "connect_json_array", steps: []step{on("A", "CONNECT []\r\n")}},
	{name: "connect_without_argument", steps: []step{on("A", "CONNECT\r\n")}},
	{name: "client_pong_is_ignored", steps: []step{on("A", connect+"PONG\r\n")}},

	// Pub/sub routing.
	{name: "pubsub_literal", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+pub("foo", "", "hello")+pub("bar", "", "nobody")+pub("foo", "", "")),
	}},
	{name: "wildcards_one_subscriber_each", steps: []step{
		on("A", connect+"SUB foo.* 1\r\n"),
		on("B", connect+"SUB foo.> 2\r\n"),
		on("C", connect+"SUB foo.bar 3\r\n"),
		on("D", connect+"SUB > 4\r\n"),
		on("E", connect+"SUB *.*.baz 5\r\n"),
		on("P", connect+pub("foo.bar", "", "1")+pub("foo.bar.baz", "", "2")+pub("foo", "", "3")+pub("x.y.baz", "", "4")),
		on("A", ""), on("B", ""), on("C", ""), on("D", ""), on("E", ""),
	}},
	// The copies of one message for a connection's overlapping
	// subscriptions may come in any order (see script.unordered);
	// nats-server sends sid 4,2,3,1 here and Flotilla 4,2,1,3.
	{name: "wildcards_overlapping_on_one_connection", unordered: true, steps: []step{
		on("A", connect+"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo.bar 3\r\nSUB > 4\r\n"),
		on("P", connect+pub("foo.bar", "", "x")),
		on("A", ""),
	}},
	{name: "queue_group_single_member", steps: []step{
		on("A", connect+"SUB work.* grp 1\r\n"),
		on("B", connect+"SUB work.> 2\r\n"),
		on("P", connect+pub("work.a", "", "1")+pub("work.b", "_INBOX.r", "2")),
		on("A", ""), on("B", ""),
	}},
	{name: "nats_go_sub_double_space_and_unsub_trailing_space", steps: []step{
		on("A", connect+"SUB foo  1\r\n"+pub("foo", "", "one")),
		on("A", "UNSUB 1 \r\n"+pub("foo", "", "two")),
	}},
	{name: "unsub_max_auto_unsubscribe", steps: []step{
		on("A", connect+"SUB foo 1\r\nUNSUB 1 2\r\n"),
		on("A", pub("foo", "", "1")+pub("foo", "", "2")+pub("foo", "", "3")),
		on("A", pub("foo", "", "4")),
	}},
	{name: "unsub_max_already_reached", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+pub("foo", "", "1")+pub("foo", "", "2")),
		on("A", "UNSUB 1 1\r\n"+pub("foo", "", "3")),
	}},
	{name: "unsub_max_from_other_publisher", steps: []step{
		on("A", connect+"SUB foo 1\r\nUNSUB 1 1\r\n"),
		on("P", connect+pub("foo", "", "1")+pub("foo", "", "2")),
		on("A", ""),
	}},
	{name: "unsub_unknown_sid", steps: []step{on("A", connect+"UNSUB 99\r\nUNSUB 98 5\r\n")}},
	{name: "duplicate_sid", steps: []step{
		on("A", connect+"SUB foo 1\r\nSUB bar 1\r\n"+pub("foo", "", "f")+pub("bar", "", "b")),
	}},
	{name: "request_with_reply_subject", steps: []step{
		on("S", connect+"SUB svc.echo 1\r\n"),
		on("R", connect+"SUB _INBOX.abc.* 7\r\n"+pub("svc.echo", "_INBOX.abc.1", "ping?")),
		on("S", pub("_INBOX.abc.1", "", "pong!")),
		on("R", ""),
	}},
	{name: "pub_reply_with_wildcard_is_accepted", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+pub("foo", "bar.*", "x")),
	}},
	{name: "echo_false", steps: []step{
		on("A", connectNoEcho+"SUB foo 1\r\n"+pub("foo", "", "self")),
		on("B", connect+"SUB foo 2\r\n"),
		on("A", pub("foo", "", "other")),
		on("B", ""), on("A", ""),
	}},
	{name: "split_writes", steps: []step{
		partial("A", connect+"SUB foo 1\r\nPU"),
		partial("A", "B foo 5\r\nhel"),
		on("A", "lo\r\n"),
	}},

	// Headers.
	{name: "hpub_with_headers", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+hpub("foo", "", "NATS/1.0\r\nA: 1\r\nB: two\r\n\r\n", "payload")),
	}},
	{name: "hpub_empty_payload", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+hpub("foo", "", "NATS/1.0\r\nA: 1\r\n\r\n", "")),
	}},
	{name: "hpub_with_reply", steps: []step{
		on("A", connect+"SUB foo 1\r\n"+hpub("foo", "_INBOX.x", "NATS/1.0\r\n\r\n", "q")),
	}},
	{name: "hpub_to_subscriber_without_headers", steps: []step{
		on("A", connectNoHdr+"SUB foo 1\r\n"),
		on("P", connect+hpub("foo", "", "NATS/1.0\r\nA: 1\r\n\r\n", "body")+hpub("foo", "", "NATS/1.0\r\n\r\n", "")),
		on("A", ""),
	}},
	{name: "hpub_from_client_without_headers", steps: []step{
		on("A", connectNoHdr+"SUB foo 1\r\n"),
		on("A", hpub("foo", "", "NATS/1.0\r\n\r\n", "x")),
	}},

	// No responders.
	{name: "no_responders", steps: []step{
		on("A", connectNR+"SUB _INBOX.a.* 1\r\n"+pub("svc.none", "_INBOX.a.x", "ping?")),
		on("A", hpub("svc.none", "_INBOX.a.y", "NATS/1.0\r\nK: v\r\n\r\n", "q")+pub("svc.none", "", "no reply")),
	}},
	{name: "no_responders_not_requested", steps: []step{
		on("A", connect+"SUB _INBOX.a.* 1\r\n"+pub("svc.none", "_INBOX.a.x", "ping?")),
	}},
	{name: "no_responders_without_headers", steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"protocol\":1,\"no_responders\":true}\r\n"),
	}},
	{name: "no_responders_reply_subscribed_elsewhere", steps: []step{
		on("A", connect+"SUB _INBOX.shared 1\r\n"),
		on("R", connectNR+pub("svc.none", "_INBOX.shared", "x")),
		on("A", ""),
	}},
	{name: "no_responders_reply_is_queue_subscription", steps: []step{
		on("R", connectNR+"SUB _INBOX.q grp 1\r\n"+pub("svc.none", "_INBOX.q", "x")),
	}},
	{name: "no_responders_echo_false_only_self", steps: []step{
		on("R", "CONNECT {\"verbose\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true,\"echo\":false}\r\n"+
			"SUB svc 1\r\nSUB _INBOX.e 2\r\n"+pub("svc", "_INBOX.e", "x")),
	}},

	// Parsing leniency.
	{name: "lower_case_ops", steps: []step{
		on("A", strings.ToLower(connect[:8])+connect[8:]+"sub foo 1\r\npub foo 2\r\nhi\r\nhpub foo 12 14\r\nNATS/1.0\r\n\r\nyo\r\nunsub 1\r\npub foo 1\r\nx\r\nping\r\n"),
	}},
	{name: "mixed_case_ops", steps: []step{
		on("A", "Connect {\"verbose\":false}\r\nSuB foo 1\r\nPuB foo 2\r\nhi\r\nPiNg\r\n"),
	}},
	{name: "tabs_and_multiple_spaces", steps: []step{
		on("A", "CONNECT\t{\"verbose\":false,\"headers\":true}\r\nSUB\tfoo\t1\r\nSUB  foo   grp    2\r\nPUB\tfoo\t2\r\nhi\r\nPUB  foo  r   2\r\nyo\r\nHPUB\tfoo\t12\t14\r\nNATS/1.0\r\n\r\nhh\r\nUNSUB\t1\r\n"),
	}},
	{name: "pub_zero_payload", steps: []step{
		on("A", connect+"SUB foo 1\r\nPUB foo 0\r\n\r\n"),
	}},

	// Protocol errors.
	{name: "pub_over_max_payload", cfg: serverConfig{MaxPayload: 16}, steps: []step{
		on("A", connect+"SUB foo 1\r\n"+pub("foo", "", "0123456789abcdef")),
		on("A", "PUB foo 17\r\n0123456789abcdefg\r\n"),
	}},
	{name: "hpub_over_max_payload", cfg: serverConfig{MaxPayload: 16}, steps: []step{
		on("A", connect+hpub("foo", "", "NATS/1.0\r\n\r\n", "0123456")),
	}},
	{name: "control_line_over_limit", cfg: serverConfig{MaxControlLine: 128}, steps: []step{
		on("A", connect+"SUB "+strings.Repeat("a", 120)+" 1\r\n"),
		on("A", "SUB "+strings.Repeat("b", 200)+" 2\r\n"),
	}},
	{name: "control_line_over_limit_without_crlf", cfg: serverConfig{MaxControlLine: 128}, steps: []step{
		on("A", connect),
		untilClosed("A", "SUB "+strings.Repeat("c", 300)),
	}},
	{name: "unknown_op", steps: []step{on("A", connect+"FOO bar\r\n")}},
	{name: "unknown_op_before_connect", steps: []step{on("A", "HELLO\r\n")}},
	{name: "garbage_bytes", steps: []step{on("A", connect+"\x00\x01\x02\r\n")}},
	{name: "empty_line", steps: []step{on("A", connect+"\r\n")}},
	{name: "pub_missing_size", steps: []step{on("A", connect+"PUB foo\r\n")}},
	{name: "pub_non_numeric_size", steps: []step{on("A", connect+"PUB foo bar\r\n")}},
	{name: "pub_negative_size", steps: []step{on("A", connect+"PUB foo -1\r\n")}},
	{name: "pub_too_many_args", steps: []step{on("A", connect+"PUB foo r x 2\r\nhi\r\n")}},
	{name: "hpub_header_larger_than_total", steps: []step{on("A", connect+"HPUB foo 10 5\r\n")}},
	{name: "hpub_missing_total", steps: []step{on("A", connect+"HPUB foo 10\r\n")}},
	{name: "payload_not_followed_by_crlf", steps: []step{
		on("A", connect+"SUB foo 1\r\nPUB foo 3\r\nabcd\r\n"),
	}},
	{name: "sub_missing_sid", steps: []step{on("A", connect+"SUB foo\r\n")}},
	{name: "sub_too_many_args", steps: []step{on("A", connect+"SUB foo q 1 x\r\n")}},
	{name: "unsub_missing_sid", steps: []step{on("A", connect+"UNSUB\r\n")}},
	{name: "unsub_non_numeric_max", steps: []step{
		on("A", connect+"SUB foo 1\r\nUNSUB 1 x\r\n"+pub("foo", "", "after")),
	}},
	{name: "sub_invalid_subject", steps: []step{
		on("A", connect+"SUB foo..bar 1\r\nSUB foo.>.bar 2\r\nSUB .foo 3\r\nSUB foo. 4\r\nSUB foo 5\r\n"+pub("foo", "", "still open")),
	}},
	{name: "sub_invalid_queue", steps: []step{
		on("A", connect+"SUB foo q.* 1\r\n"+pub("foo", "", "x")),
	}},
	{name: "pub_wildcard_subject", steps: []step{
		on("A", connect+"SUB > 1\r\n"+pub("foo.*", "", "star")+pub("foo.>", "", "gt")+pub("foo", "", "ok")),
	}},
	{name: "pub_wildcard_subject_pedantic", steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"pedantic\":true,\"protocol\":1}\r\nSUB > 1\r\n"+pub("foo.*", "", "star")+pub("foo", "", "ok")),
	}},
	{name: "pub_empty_token_subject", steps: []step{
		on("A", connect+"SUB > 1\r\n"+pub("foo..bar", "", "x")+pub("foo", "", "ok")),
	}},
	{name: "max_subscriptions_exceeded", cfg: serverConfig{MaxSubs: 2}, steps: []step{
		on("A", connect+"SUB a 1\r\nSUB b 2\r\n"),
		on("A", "SUB c 3\r\n"),
		on("A", pub("a", "", "x")+pub("c", "", "y")),
	}},

	// Authentication.
	{name: "auth_ok", cfg: authCfg, steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\",\"protocol\":1}\r\nSUB foo 1\r\n"+pub("foo", "", "hi")),
	}},
	{name: "auth_wrong_password", cfg: authCfg, steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\",\"protocol\":1}\r\n"),
	}},
	{name: "auth_missing_credentials", cfg: authCfg, steps: []step{on("A", connect)}},
	{name: "auth_ping_before_connect", cfg: authCfg, steps: []step{on("A", "PING\r\n")}},
	{name: "auth_pong_before_connect", cfg: authCfg, steps: []step{on("A", "PONG\r\n")}},
	{name: "auth_sub_before_connect", cfg: authCfg, steps: []step{on("A", "SUB foo 1\r\n")}},
	{name: "auth_token", cfg: serverConfig{Token: "t0ken"}, steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"auth_token\":\"t0ken\"}\r\n"),
		on("B", "CONNECT {\"verbose\":false,\"auth_token\":\"nope\"}\r\n"),
	}},
	{name: "auth_timeout", cfg: serverConfig{User: "alice", Pass: "s3cret", AuthTimeout: 100 * time.Millisecond}, steps: []step{
		untilClosed("A", ""),
	}},
	{name: "auth_second_connect_wrong_password", cfg: authCfg, steps: []step{
		on("A", "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret\"}\r\n"),
		on("A", "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\n"),
	}},

	// Server PINGs.
	{name: "stale_connection", cfg: serverConfig{PingInterval: 50 * time.Millisecond, MaxPingsOut: 2}, steps: []step{
		untilClosed("A", connect),
	}},
}

// TestDifferential_Scripts plays every script against nats-server and
// Flotilla and requires identical transcripts.
func TestDifferential_Scripts(t *testing.T) {
	t.Parallel()
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			want := runScript(t, startNATS(t, sc.cfg), sc)
			got := runScript(t, startFlotilla(t, sc.cfg), sc)
			same := slices.Equal(want, got)
			switch {
			case same && sc.knownDiff != "":
				t.Errorf("known difference %q no longer reproduces: remove the knownDiff marker", sc.knownDiff)
			case !same && sc.knownDiff == "":
				t.Errorf("transcripts differ:\n%s", lineDiff(want, got))
			case !same:
				t.Logf("known difference (%s):\n%s", sc.knownDiff, lineDiff(want, got))
			default:
				t.Logf("identical transcripts:\n%s", strings.Join(want, "\n"))
			}
		})
	}
}

// TestDifferential_ScriptNamesUnique keeps subtest names addressable with -run.
func TestDifferential_ScriptNamesUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, sc := range scripts {
		if seen[sc.name] {
			t.Errorf("duplicate script name %q", sc.name)
		}
		seen[sc.name] = true
	}
}
