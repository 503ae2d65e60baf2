package mux_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sandmux/sandmux/mux"
)

// FuzzHello: UnmarshalBinary never panics, fails only with
// ErrResumeProtocol, and whatever it accepts encodes back to exactly the
// same bytes. Seeds live in testdata/fuzz/FuzzHello.
func FuzzHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var h mux.Hello
		if err := h.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, mux.ErrResumeProtocol) {
				t.Fatalf("UnmarshalBinary(% x): undocumented error %v", b, err)
			}
			return
		}
		again, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", h, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the hello\n got % x\nwant % x", again, b)
		}
		_ = h.Resuming()
	})
}

// FuzzWelcome is FuzzHello for the server's answer; a status this build
// does not know must still map to an error, never to success.
// Seeds live in testdata/fuzz/FuzzWelcome.
func FuzzWelcome(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var w mux.Welcome
		if err := w.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, mux.ErrResumeProtocol) {
				t.Fatalf("UnmarshalBinary(% x): undocumented error %v", b, err)
			}
			return
		}
		if w.Grace < 0 {
			t.Fatalf("UnmarshalBinary(% x): negative grace %v", b, w.Grace)
		}
		again, err := w.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", w, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the welcome\n got % x\nwant % x", again, b)
		}
		known := w.Status <= mux.WelcomeDisabled
		if err := w.Err(); (err == nil) != (w.Status == mux.WelcomeNew || w.Status == mux.WelcomeResumed) || (!known && !errors.Is(err, mux.ErrResumeProtocol)) {
			t.Fatalf("status %d maps to %v", w.Status, err)
		}
	})
}
