package yamux

import (
	"errors"
	"io"
	"testing"
	"time"
)

// The spare-start tests' sizes: an eighth of spareConf's 64 MiB session
// window is 8 MiB, room for two spare starts and no third.
const (
	spareTestStart = 512 << 10
	spareTestSpare = 3 << 20
)

// spareConf is a session that starts streams at spareTestSpare while it
// has room, at spareTestStart otherwise.
func spareConf() *Config {
	c := testConf()
	c.ConnectionWriteTimeout = 10 * time.Second
	c.MaxStreamWindowSize = 16 << 20
	c.StartStreamWindowSize = spareTestStart
	c.SpareStartWindowSize = spareTestSpare
	c.MaxSessionWindowGrowth = 32 << 20
	c.MaxSessionReceiveWindow = 64 << 20
	return c
}

// A stream refused at the accept backlog gives its spare start back as it
// is refused, before its RST goes out: nothing else closes it, and until
// it was garbage the budget stayed short by its spare start.
func TestSpareStartReturnsWhenRejectedAtTheBacklog(t *testing.T) {
	sconf := spareConf()
	sconf.AcceptBacklog = 1
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, spareConf(), sconf)

	waiting, err := client.OpenStream() // fills the backlog, never accepted
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer waiting.Close()
	waitUntil(t, "the first stream waits in the backlog", func() bool { return server.NumStreams() == 1 })
	refused, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer refused.Close()
	refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := refused.Read(make([]byte, 1)); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("read of the refused stream: %v, want %v", err, ErrConnectionReset)
	}
	if got, want := server.windowGrowth.Load(), uint64(spareTestSpare-spareTestStart); got != want {
		t.Fatalf("server's growth budget used %d after the refusal, want the waiting stream's %d", got, want)
	}
}

// A stream the peer resets gives its spare start back, on both sides.
func TestSpareStartReturnsAfterReset(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, spareConf(), spareConf())
	c, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s, err := server.AcceptStream()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer s.Close()
	if got := server.windowGrowth.Load(); got != spareTestSpare-spareTestStart {
		t.Fatalf("server's growth budget used %d, want a spare start's %d", got, spareTestSpare-spareTestStart)
	}
	c.Abort()
	waitUntil(t, "both sides give the spare start back", func() bool {
		return server.windowGrowth.Load() == 0 && client.windowGrowth.Load() == 0
	})
}

// A stream closed on both sides with more than a start window unread keeps
// its spare start until its reader has drained it, then gives it back.
func TestSpareStartReturnsOnceDrained(t *testing.T) {
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, spareConf(), spareConf())
	c, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s, err := server.AcceptStream()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	const sent = 2 << 20 // beyond the start window, within the spare one
	if _, err := c.Write(make([]byte, sent)); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.Close()
	waitUntil(t, "the data and FIN arrive", func() bool { return s.RemoteFinished() })
	s.Close()
	if got := server.windowGrowth.Load(); got != spareTestSpare-spareTestStart {
		t.Fatalf("server's growth budget used %d with %d unread, want the spare start's %d kept", got, sent, spareTestSpare-spareTestStart)
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != sent {
		t.Fatalf("read %d, %v; want %d", n, err, sent)
	}
	waitUntil(t, "the drained stream gives its spare start back", func() bool {
		return server.windowGrowth.Load() == 0 && client.windowGrowth.Load() == 0
	})
}
