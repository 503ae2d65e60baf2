package mux_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// openHalfClosed opens a stream from cli to a server that answers with
// handle, and half-closes it at once (a request whose input has ended,
// as `echo req | sandmux proxy host:port` sends).
func openHalfClosed(t *testing.T, ccfg mux.Config, handle func(*mux.Session, *mux.Stream)) (*mux.Session, *mux.Stream) {
	t.Helper()
	cli, srv := newPair(t, pairOptions{client: ccfg})
	serve(t, srv, func(st *mux.Stream) {
		req, err := srv.ReadRequest(st)
		if err != nil {
			return
		}
		if err := srv.Reply(st, mux.Reply{Status: mux.StatusOK, Target: req.Target}); err != nil {
			return
		}
		handle(srv, st)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cli.Open(ctx, mux.Request{Target: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return cli, st
}

// The close timeout of a half-closed stream counts from the peer's last
// frame: a download that keeps coming for longer than the timeout after
// the request was half-closed arrives whole, and ends with EOF.
func TestHalfClosedStreamOutlivesCloseTimeoutWhileBusy(t *testing.T) {
	ccfg := fastConfig()
	// Five times the pace: a loaded machine (other tests, -race) once
	// left a 300 ms gap between two chunks paced 100 ms apart, and a
	// starved one (nice 19, load average 20) a gap over 500 ms, so the
	// timeout is 1.5 s and the pace 300 ms; still five timeouts long.
	const pace = 300 * time.Millisecond
	ccfg.StreamCloseTimeout = 5 * pace
	const chunks, size = 25, 1000 // one every pace: 7.5 s, five timeouts
	_, st := openHalfClosed(t, ccfg, func(_ *mux.Session, st *mux.Stream) {
		tick := time.NewTicker(pace) // pacing the download, not synchronising
		defer tick.Stop()
		for range chunks {
			if _, err := st.Write(make([]byte, size)); err != nil {
				return
			}
			<-tick.C
		}
		_ = st.CloseWrite()
	})
	n, err := io.Copy(io.Discard, st)
	if err != nil || n != chunks*size {
		t.Fatalf("read %d of %d bytes, then %v", n, chunks*size, err)
	}
}

// A half-closed stream whose peer stays silent for the close timeout is
// closed, and its reader is told so: never a clean EOF, which would pass
// a cut download off as complete.
func TestHalfClosedStreamCloseTimeoutIsNotEOF(t *testing.T) {
	ccfg := fastConfig()
	ccfg.StreamCloseTimeout = 300 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	_, st := openHalfClosed(t, ccfg, func(_ *mux.Session, st *mux.Stream) {
		_, _ = st.Write([]byte("partial"))
		<-release
	})
	n, err := io.Copy(io.Discard, st)
	if !errors.Is(err, mux.ErrCloseTimeout) {
		t.Fatalf("read %d bytes, then %v; want %v", n, err, mux.ErrCloseTimeout)
	}
}

// A stream whose data and FIN have arrived ends with EOF even if its
// session ends before the reader gets to the end: the data is complete.
func TestFinishedStreamEndsWithEOFAfterSessionEnds(t *testing.T) {
	const size = 5000
	sent := make(chan *mux.Session, 1)
	cli, st := openHalfClosed(t, fastConfig(), func(srv *mux.Session, st *mux.Stream) {
		_, _ = st.Write(make([]byte, size))
		_ = st.CloseWrite()
		sent <- srv
	})
	srv := <-sent
	// The pong comes after the data and the FIN, in order, so they have
	// been received once Ping returns.
	if _, err := srv.Ping(); err != nil {
		t.Fatal(err)
	}
	_ = srv.Close()
	<-cli.CloseChan()
	n, err := io.Copy(io.Discard, st)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes, then %v; want all and EOF", n, size, err)
	}
}

// A data frame that has begun to arrive but not finished (on a resumable
// transport, for as long as an outage lasts) must not hold up its
// stream's reader: a read deadline and Close still end a Read.
func TestPartialFrameLeavesReadDeadlineWorking(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	srv, err := mux.Server(b, fastConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	inFrame := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		_, _ = a.Write(yamuxHeader(1, 1, 1, 0))    // window update, SYN: stream 1
		_, _ = a.Write(yamuxHeader(0, 0, 1, 1000)) // data, 1000 bytes announced
		// net.Pipe's Write returns once the session has read the bytes:
		// it is inside the frame, waiting for the rest.
		_, _ = a.Write(make([]byte, 10))
		close(inFrame)
		_, _ = io.Copy(io.Discard, a)
	}()
	st, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	<-inFrame
	_ = st.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	done := make(chan error, 1)
	go func() { _, err := st.Read(make([]byte, 10)); done <- err }()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		_ = a.Close()
		<-done
		t.Error("Read ignored its 100 ms deadline while a frame was half received")
	}
	_ = a.Close()
	<-fed
}

// yamuxHeader is a yamux frame header.
func yamuxHeader(typ byte, flags uint16, stream, length uint32) []byte {
	return []byte{0, typ, byte(flags >> 8), byte(flags),
		byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream),
		byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}
}
