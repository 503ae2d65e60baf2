package mux

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestWelcomeSpecExample pins the example in spec.md §9.7.
func TestWelcomeSpecExample(t *testing.T) {
	w := Welcome{Status: WelcomeResumed, Received: 4096, Grace: 10 * time.Minute}
	w.ID[SessionIDSize-1] = 1
	got, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(strings.Join([]string{
		"0301",
		"00000000000000000000000000000001",
		strings.Repeat("00", SecretSize),
		"0000000000001000",
		"00000000000927c0",
	}, ""))
	if !bytes.Equal(got, want) {
		t.Fatalf("welcome\n got %x\nwant %x", got, want)
	}
	var back Welcome
	if err := back.UnmarshalBinary(got); err != nil || back != w {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	hello, _ := Hello{}.MarshalBinary()
	if len(hello) != 57 || hello[0] != msgHello || !bytes.Equal(hello[1:], make([]byte, 56)) {
		t.Fatalf("new-session hello %x", hello)
	}
}

// TestHandshakeStatusErrors maps every welcome status to its error.
func TestHandshakeStatusErrors(t *testing.T) {
	for st, want := range map[WelcomeStatus]error{
		WelcomeNew: nil, WelcomeResumed: nil,
		WelcomeUnknown: ErrUnknownSession, WelcomeDenied: ErrResumeDenied, WelcomeDisabled: ErrResumeDisabled,
	} {
		if got := (Welcome{Status: st}).Err(); got != want {
			t.Errorf("status %d: %v, want %v", st, got, want)
		}
	}
	if err := (Welcome{Status: 9}).Err(); err == nil {
		t.Error("unknown status accepted")
	}
	nr := &NotResumedError{Within: 2 * time.Second, Cause: ErrUnknownSession}
	if want := "could not be resumed within 2s: the server no longer knows this session (it restarted, or the grace period ran out)"; nr.Error() != want {
		t.Errorf("text %q", nr.Error())
	}
	// The grace period ran out after failed attempts: how it was lost in
	// words of its own, then why the last attempt failed.
	lost := &NotResumedError{Within: 2 * time.Second, Cause: fmt.Errorf("failed to get reader: failed to read frame header: %w", io.EOF), Last: errors.New("ws://h: connection refused")}
	if want := "could not be resumed within 2s (lost: the connection was closed; last attempt: ws://h: connection refused)"; lost.Error() != want {
		t.Errorf("text %q", lost.Error())
	}
	// A refusal, not a time limit, names no time.
	nr.Within = 0
	if want := "could not be resumed: the server no longer knows this session (it restarted, or the grace period ran out)"; nr.Error() != want {
		t.Errorf("text %q", nr.Error())
	}
}

// TestGraceClockIgnoresFrozenTime: a jump of the wall clock between ticks
// (the process was frozen) counts as at most two steps.
func TestGraceClockIgnoresFrozenTime(t *testing.T) {
	g := newGraceClock(time.Second)
	g.last = g.last.Add(-time.Hour) // as if frozen for an hour since the last tick
	if got := g.tick(); got > 2*time.Second {
		t.Fatalf("an hour frozen counted as %s", got)
	}
}
