package yamux

import (
	"sync/atomic"
	"testing"
)

// A session's first streams start at the spare window, taken from the
// growth budget; once its streams hold an eighth of the session window,
// new streams start at the start window; and a spare start goes back to
// the budget when its stream closes, as growth does.
func TestSpareStartWhileTheSessionHasRoom(t *testing.T) {
	const (
		spare = spareTestSpare
		start = spareTestStart
	)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, spareConf(), spareConf())

	var opened []*Stream
	defer func() {
		for _, s := range opened {
			s.Close()
		}
	}()
	open := func() (*Stream, *Stream) {
		t.Helper()
		c, err := client.OpenStream()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		s, err := server.AcceptStream()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		opened = append(opened, c, s)
		return c, s
	}
	// The grant a stream's peer received: what it may send.
	sendWindow := func(s *Stream) uint32 { return atomic.LoadUint32(&s.sendWindow) }
	wantWindows := func(i int, c, s *Stream, want uint32) {
		t.Helper()
		waitUntil(t, "the grants arrive", func() bool { return sendWindow(c) == want && sendWindow(s) == want })
		if got := s.tuner.held.Load(); got != int64(want) {
			t.Fatalf("stream %d: the server's side holds %d, want %d", i, got, want)
		}
	}
	for i, want := range []uint32{spare, spare, start, start} {
		c, s := open()
		wantWindows(i, c, s, want)
	}
	if got := server.windowGrowth.Load(); got != 2*(spare-start) {
		t.Fatalf("growth budget used %d, want the two spare starts' %d", got, 2*(spare-start))
	}
	for _, s := range opened {
		s.Close()
	}
	opened = nil
	waitUntil(t, "the spare starts go back to the budget", func() bool {
		return server.windowGrowth.Load() == 0 && client.windowGrowth.Load() == 0
	})
	// Room again: the next stream starts spare.
	c, s := open()
	wantWindows(4, c, s, spare)
}
