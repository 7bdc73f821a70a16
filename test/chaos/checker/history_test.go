package checker

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestHistory_RoundTrip(t *testing.T) {
	t.Parallel()
	h, _ := baseline()
	h = append(h, Event{Kind: EventPublish, Client: "p1", Value: `<&"\n>`, Attempt: 1, Outcome: OutcomeOK, Seq: 9, Call: 1, Return: 2})
	var buf bytes.Buffer
	if err := WriteHistory(&buf, h); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(h) {
		t.Fatalf("%d lines for %d events", n, len(h))
	}
	back, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, h) {
		t.Fatalf("round trip differs:\n%v\n%v", back, h)
	}
}

func TestReadHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []Event
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "blank lines and no final newline", in: "\n{\"kind\":\"ack\",\"client\":\"d1\",\"call\":1,\"return\":2,\"seq\":3}\n\n  \n{\"kind\":\"nemesis\",\"client\":\"nemesis\",\"call\":5,\"return\":0}",
			want: []Event{{Kind: EventAck, Client: "d1", Call: 1, Return: 2, Seq: 3}, {Kind: EventNemesis, Client: "nemesis", Call: 5}}},
		{name: "unknown fields are ignored", in: `{"kind":"deliver","client":"o1","subject":"x","seq":1}`,
			want: []Event{{Kind: EventDeliver, Client: "o1", Seq: 1}}},
		{name: "bad line names its number", in: "{\"kind\":\"ack\"}\n{\"kind\":\n", wantErr: "line 2"},
		{name: "wrong type", in: `{"kind":"ack","seq":-1}`, wantErr: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadHistory(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzReadHistory: any input either fails cleanly or reads into events
// that write and read back to themselves.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte(`{"kind":"publish","client":"p1","value":"a","attempt":1,"outcome":"ok","seq":1,"call":0,"return":10}`))
	f.Add([]byte("\n\n{}\n{\"kind\":\"nemesis\",\"value\":\"kill leader n2\",\"fault\":\"kill-leader\"}"))
	f.Add([]byte(`{"kind":"ack","seq":18446744073709551615,"duplicate":true}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadHistory(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteHistory(&buf, h); err != nil {
			t.Fatal(err)
		}
		back, err := ReadHistory(&buf)
		if err != nil || !slices.Equal(back, h) {
			t.Fatalf("round trip: %v\n%v\n%v", err, h, back)
		}
	})
}
