package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A framing proxy's stream reaches the target whole, its clean end
// included; one whose connection ends without the end of its data
// (forward's local client reset, the proxy killed) resets the target's
// connection, which would otherwise take the part it got for the whole.
func TestFrameInCarriesTheEnd(t *testing.T) {
	target, drained := testutil.DrainServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Allow = []string{target.Addr} })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	req := OpenRequest{URL: url, Target: target.Addr, Host: "box", ConnectTimeout: 5 * time.Second}
	const size = 300 << 10
	for _, clean := range []bool{true, false} {
		c, err := Open(context.Background(), dir, noStart, req)
		if err != nil {
			t.Fatal(err)
		}
		if !c.(*framedReader).frameIn {
			t.Fatal("the agent did not take the proxy's frames")
		}
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if clean {
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		} else {
			_ = c.Close()
		}
		select {
		case d := <-drained:
			switch {
			case clean && (d.Err != nil || d.N != size):
				t.Errorf("clean end: the target read %d bytes, then %v; want %d and its end", d.N, d.Err, size)
			case !clean && !errors.Is(d.Err, syscall.ECONNRESET):
				t.Errorf("cut: the target read %d bytes, then %v; want a reset", d.N, d.Err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the target's connection did not end")
		}
		_ = c.Close()
	}
}

// A proxy that predates FrameIn sends raw bytes, and the agent reads them
// as such.
func TestRawProxyBytes(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil) // an echo target
	dir := shortDir(t)
	runAgent(t, dir, nil)
	c, rep, err := open(context.Background(), dir, noStart, OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FrameIn {
		t.Fatal("the agent took frames it was not offered")
	}
	fr := newFramedReader(c, false)
	defer fr.Close()
	data := bytes.Repeat([]byte("raw "), 64<<10)
	go func() {
		_, _ = fr.Write(data)
		_ = fr.CloseWrite()
	}()
	got, err := io.ReadAll(fr)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo of raw bytes: %d bytes (want %d), %v", len(got), len(data), err)
	}
}

// The agent's read of a framing proxy: data frames in order, then io.EOF
// at the EOF frame, or errProxyGone where the connection ends without one
// (after a whole frame or inside one).
func TestFramesIn(t *testing.T) {
	for _, end := range []string{"eof frame", "close", "close inside a frame"} {
		a, b, err := unixPair(t)
		if err != nil {
			t.Fatal(err)
		}
		fw := &framedWriter{conn: a, frameIn: true, in: unframer{r: a}}
		fr := newFramedReader(b, true)
		go func() {
			_, _ = fr.Write([]byte("hello "))
			_, _ = fr.Write([]byte("world"))
			switch end {
			case "eof frame":
				_ = fr.CloseWrite()
			case "close inside a frame":
				_, _ = fr.UnixConn.Write(frameHeader(frameData, 10))
				_, _ = fr.UnixConn.Write([]byte("cut"))
				_ = fr.Close()
			default:
				_ = fr.Close()
			}
		}()
		got, err := io.ReadAll(fw)
		want := "hello world"
		if end == "close inside a frame" {
			want += "cut"
		}
		switch {
		case string(got) != want:
			t.Errorf("%s: read %q, want %q", end, got, want)
		case end == "eof frame" && err != nil:
			t.Errorf("%s: %v, want a clean end", end, err)
		case end != "eof frame" && !errors.Is(err, errProxyGone):
			t.Errorf("%s: %v, want errProxyGone", end, err)
		}
		_ = a.Close()
		_ = b.Close()
	}
}

// A framing proxy whose download ended cleanly and whose upload the agent
// then cut reads why from its failed write (the agent's late verdict), not
// a broken pipe.
func TestFramesLateVerdict(t *testing.T) {
	a, b, err := unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	fw := &framedWriter{conn: a, frameIn: true, in: unframer{r: a}}
	fr := newFramedReader(b, true)
	if _, err := fw.Write([]byte("all of it")); err != nil {
		t.Fatal(err)
	}
	if err := fw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(fr); string(got) != "all of it" || err != nil {
		t.Fatalf("download: %q, %v", got, err)
	}
	const reason = "session to box could not be resumed"
	_ = fw.Close() // the agent's splice, cut, stops reading
	fw.finish(errors.New(reason))
	var werr error
	for werr == nil {
		_, werr = fr.Write(make([]byte, 64<<10))
	}
	var se *StreamError
	if !errors.As(werr, &se) || se.Reason != reason {
		t.Fatalf("upload: %v, want the agent's reason", werr)
	}
}
