package mux

import (
	"testing"
	"time"
)

// A keepalive under 4 ns, or a resume grace under 8 ns, made a ticker of
// 0, which panics: `sandmux proxy --keepalive 1ns` and `--resume-timeout
// 1ns` crashed with a stack trace, and so would a client whose server
// sent such a grace in its welcome.
func TestTinyIntervalsDoNotPanic(t *testing.T) {
	rcfg := DefaultResumeConfig()
	rcfg.Grace = time.Nanosecond
	r, err := NewResumable(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	// Close waits for the Resumable's background, which makes its ticker
	// first; so does a session's for its monitor.
	_ = r.Close()

	cfg := DefaultConfig()
	cfg.KeepAliveInterval = time.Nanosecond
	rc, rs := testResumable(t), testResumable(t)
	attachPair(t, rc, rs)
	cli, err := Client(rc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Server(rs, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = cli.Close()
	_ = srv.Close()
}
