package mux_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// A guarded connection ends cleanly on Close, is reset by Abort, and is
// reset too when closed without either, as the kernel closes the sockets
// of a process that died.
func TestGuarded(t *testing.T) {
	for _, end := range []string{"Close", "Abort", "death"} {
		x, y := tcpPair(t)
		g := mux.Guarded(y)
		if _, err := g.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		switch end {
		case "Close":
			_ = g.Close()
		case "Abort":
			mux.Abort(g)
		default:
			_ = y.Close() // not through g: linger as Guarded left it
		}
		_ = x.SetReadDeadline(time.Now().Add(waitTimeout))
		b, err := io.ReadAll(x)
		switch {
		case end == "Close" && (string(b) != "data" || err != nil):
			t.Errorf("Close: read %q, %v; want the data and a clean end", b, err)
		case end != "Close" && !errors.Is(err, syscall.ECONNRESET):
			t.Errorf("%s: read %q, %v; want a reset", end, b, err)
		}
	}
}
