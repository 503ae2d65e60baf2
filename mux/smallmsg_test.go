package mux_test

import (
	"bytes"
	"io"
	"testing"
)

// frameCounts is how many data frames with a body and how many window
// updates a frameLog holds for one stream.
type frameCounts struct{ data, updates int }

// counts counts stream id's data frames with a body and window updates.
func (f *frameLog) counts(t *testing.T, id uint32) frameCounts {
	t.Helper()
	var c frameCounts
	f.each(t, func(typ byte, sid, n uint32) {
		switch {
		case sid != id:
		case typ == 0 && n > 0:
			c.data++
		case typ == 1:
			c.updates++
		}
	})
	return c
}

// TestSmallMessagesCostOneFrameEach: a small message, one at a time (an
// SFTP request and its answer, a keystroke and its echo), is one data
// frame each way and nothing more: no window update per message on
// either side. Every frame is a WebSocket message, a write and a wake-up
// of the peer on each hop, which is what a round trip through the tunnel
// costs (bench/PERFORMANCE.md); a window update per read would double
// them.
func TestSmallMessagesCostOneFrameEach(t *testing.T) {
	const rounds = 200
	st, cliLog, srvLog := loggedEchoStream(t, fastConfig())
	msg, got := randBytes(t, 64), make([]byte, 64)
	pingPong := func() {
		t.Helper()
		if _, err := st.Write(msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		if _, err := io.ReadFull(st, got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("echo differs from the message sent")
		}
	}
	// The stream's set-up (its request, the reply, the first window
	// updates) is counted before, not in, the rounds.
	pingPong()
	cli0, srv0 := cliLog.counts(t, st.StreamID()), srvLog.counts(t, st.StreamID())
	for range rounds {
		pingPong()
	}
	// The client has read every echo, so the server wrote them all; the
	// client's last message was echoed, so it was written too.
	cli1, srv1 := cliLog.counts(t, st.StreamID()), srvLog.counts(t, st.StreamID())
	for _, side := range []struct {
		name   string
		before frameCounts
		after  frameCounts
	}{{"client", cli0, cli1}, {"server", srv0, srv1}} {
		if d := side.after.data - side.before.data; d != rounds {
			t.Errorf("%s sent %d data frames for %d messages, want one each", side.name, d, rounds)
		}
		// A window update goes out when an eighth of the window has been
		// read: 200 messages of 64 bytes are far from that.
		if u := side.after.updates - side.before.updates; u != 0 {
			t.Errorf("%s sent %d window updates during %d small messages, want none", side.name, u, rounds)
		}
	}
}
