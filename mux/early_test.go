package mux_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// Bytes written before the reply arrives reach the target once it is
// accepted, in order, and the reply is consumed before the echo.
func TestOpenEarlyWritesBeforeReply(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	release := make(chan struct{})
	serve(t, srv, func(st *mux.Stream) {
		<-release // the server takes its time, as a target dial does
		echo(srv)(st)
	})
	st, err := cli.OpenEarly(context.Background(), mux.Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := bytes.Repeat([]byte("early "), 10000)
	if _, err := st.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	close(release)
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v: want the %d written before the reply", len(got), err, len(data))
	}
}

// A refusal is the first Read's error, and the stream is closed.
func TestOpenEarlyRefusalOnRead(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	serve(t, srv, func(st *mux.Stream) {
		if _, err := srv.ReadRequest(st); err != nil {
			return
		}
		_ = srv.Reply(st, mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:1", Message: "connection refused"})
	})
	st, err := cli.OpenEarly(context.Background(), mux.Request{Target: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Read(make([]byte, 10))
	var se *mux.StreamError
	if !errors.As(err, &se) || se.Status != mux.StatusRefused {
		t.Fatalf("first read: %v, want a *StreamError with status refused", err)
	}
	if _, err2 := st.Read(make([]byte, 10)); !errors.Is(err2, err) {
		t.Fatalf("second read: %v, want the same refusal", err2)
	}
}

// A server that never replies costs the reader the header timeout, not
// forever.
func TestOpenEarlyReplyTimeout(t *testing.T) {
	cfg := fastConfig()
	cfg.HeaderTimeout = 200 * time.Millisecond
	cli, srv := newPair(t, pairOptions{client: cfg})
	hold := make(chan struct{})
	serve(t, srv, func(*mux.Stream) { <-hold })
	t.Cleanup(func() { close(hold) }) // runs before serve's cleanup waits
	st, err := cli.OpenEarly(context.Background(), mux.Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	if _, err := st.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded without a reply")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("read waited %v for a reply, want about the header timeout", d)
	}
}

// ReadChunk, which Splice prefers to Read, also consumes the reply first
// and reports a refusal.
func TestOpenEarlyReadChunk(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	serve(t, srv, func(st *mux.Stream) {
		req, err := srv.ReadRequest(st)
		if err != nil {
			return
		}
		if req.Target != "" {
			_ = srv.Reply(st, mux.Reply{Status: mux.StatusRefused, Target: req.Target, Message: "connection refused"})
			return
		}
		if srv.Reply(st, mux.Reply{Status: mux.StatusOK}) == nil {
			_, _ = st.Write([]byte("banner"))
		}
		_ = st.Close()
	})

	st, err := cli.OpenEarly(context.Background(), mux.Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []byte
	for {
		b, token, err := st.ReadChunk()
		got = append(got, b...)
		st.ReleaseChunk(token)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "banner" {
		t.Fatalf("ReadChunk read %q, want only the stream's bytes %q", got, "banner")
	}

	refused, err := cli.OpenEarly(context.Background(), mux.Request{Target: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	var se *mux.StreamError
	if _, _, err := refused.ReadChunk(); !errors.As(err, &se) || se.Status != mux.StatusRefused {
		t.Fatalf("ReadChunk of a refused stream: %v, want a *StreamError with status refused", err)
	}
}

// A writer still sending when the server's refusal arrives is told the
// refusal, not that the stream was closed (which the refusal does).
func TestOpenEarlyRefusalOnWrite(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	serve(t, srv, func(st *mux.Stream) {
		if _, err := srv.ReadRequest(st); err != nil {
			return
		}
		_ = srv.Reply(st, mux.Reply{Status: mux.StatusNotAllowed, Target: "127.0.0.1:9"})
		_ = st.Close()
	})
	st, err := cli.OpenEarly(context.Background(), mux.Request{Target: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var se *mux.StreamError
	if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) {
		t.Fatalf("read: %v, want the refusal", err)
	}
	if _, err := st.Write([]byte("x")); !errors.As(err, &se) {
		t.Errorf("write after the refusal: %v, want the refusal", err)
	}

	// Spliced, with the local side sending all along: the splice's verdict
	// is the refusal whichever direction ends first.
	for i := range 10 {
		st, err := cli.OpenEarly(context.Background(), mux.Request{Target: "127.0.0.1:9"})
		if err != nil {
			t.Fatal(err)
		}
		local, app := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1<<20)
			for {
				if _, err := app.Write(buf); err != nil {
					return
				}
			}
		}()
		go func() { _, _ = io.Copy(io.Discard, app) }()
		err = mux.Splice(local, st)
		_ = app.Close()
		<-done
		if !errors.As(err, &se) {
			t.Errorf("run %d: splice ended with %v, want the refusal", i, err)
		}
	}
}
