package mux_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// The stdout side of a socket that is also stdin ends only its writing on
// Close, so the peer reads the end while it can still send, and resets
// the socket on Abort, with no FIN ahead of the reset.
func TestWriteHalf(t *testing.T) {
	t.Run("Close", func(t *testing.T) {
		x, y := tcpPair(t)
		out := mux.WriteHalf(mux.Direct(y))
		if _, err := out.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		_ = out.Close()
		_ = x.SetDeadline(time.Now().Add(waitTimeout))
		if b, err := io.ReadAll(x); string(b) != "data" || err != nil {
			t.Fatalf("read %q, %v; want the data and its end", b, err)
		}
		if _, err := x.Write([]byte("more")); err != nil {
			t.Fatal(err)
		}
		_ = y.SetReadDeadline(time.Now().Add(waitTimeout))
		b := make([]byte, 4)
		if _, err := io.ReadFull(y, b); err != nil || string(b) != "more" {
			t.Fatalf("stdin side read %q, %v after stdout's Close; want the peer's bytes", b, err)
		}
	})
	t.Run("Abort", func(t *testing.T) {
		x, y := tcpPair(t)
		out := mux.WriteHalf(mux.Direct(y))
		if _, err := out.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		mux.Abort(out)
		_ = x.SetDeadline(time.Now().Add(waitTimeout))
		if b, err := io.ReadAll(x); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read %q, %v; want a reset, never the end", b, err)
		}
	})
}
