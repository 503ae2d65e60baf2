//go:build unix

package sshd

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// Connections that never log in hold their slots; past MaxStartups a new
// one is closed before the server says a word, and once a slot is free a
// login goes through again.
func TestEmbeddedMaxStartups(t *testing.T) {
	t.Parallel()
	f := start(t, func(c *Config) { c.MaxStartups = MaxStartups{Start: 2, Rate: 100, Full: 2} })
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The server's version line says it took the connection.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("a connection within MaxStartups: %q, %v", line, err)
		}
		idle = append(idle, c)
	}
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); len(got) > 0 || err != nil {
		t.Fatalf("a connection past MaxStartups read %q, %v; want it closed at once", got, err)
	}
	if cl, err := f.dial(t); err == nil {
		cl.Close()
		t.Fatal("a login past MaxStartups went through")
	}
	_ = idle[0].Close()
	// The server gives a login's slot back a moment after the client's
	// dial returns, so each login below may need another try.
	first, err := loginWithin(t, f, 10*time.Second)
	if err != nil {
		t.Fatalf("no login once a slot was free: %v", err)
	}
	first.Close()
	// A logged-in connection holds no slot: with one idle connection
	// left and one logged in, one more still gets in.
	kept, err := loginWithin(t, f, 10*time.Second)
	if err != nil {
		t.Fatalf("no login with one slot free: %v", err)
	}
	defer kept.Close()
	last, err := loginWithin(t, f, 10*time.Second)
	if err != nil {
		t.Fatalf("a logged-in connection kept its MaxStartups slot: %v", err)
	}
	last.Close()
}

// loginWithin logs in to f, trying until d has passed; it returns the
// client, or the last attempt's error.
func loginWithin(t *testing.T, f *fixture, d time.Duration) (*ssh.Client, error) {
	var c *ssh.Client
	var err error
	testutil.Poll(d, func() bool {
		c, err = f.dial(t)
		return err == nil
	})
	return c, err
}

// OpenSSH's rule: never below start, always from full, between them
// rate% rising linearly.
func TestMaxStartupsDrop(t *testing.T) {
	s := startups{limit: MaxStartups{Start: 10, Rate: 30, Full: 100}}
	count := func(n int) int {
		d := 0
		for range 2000 {
			if s.drop(n) {
				d++
			}
		}
		return d
	}
	if d := count(9); d != 0 {
		t.Errorf("9 waiting: %d of 2000 dropped, want none", d)
	}
	if d := count(100); d != 2000 {
		t.Errorf("100 waiting: %d of 2000 dropped, want all", d)
	}
	// 30% at 10 and 65% at 55; a wide margin keeps this from flaking.
	if d := count(10); d < 400 || d > 800 {
		t.Errorf("10 waiting: %d of 2000 dropped, want about 600", d)
	}
	if d := count(55); d < 1100 || d > 1500 {
		t.Errorf("55 waiting: %d of 2000 dropped, want about 1300", d)
	}
	if err := (MaxStartups{Start: 5, Rate: 30, Full: 4}).Valid(); err {
		t.Error("start above full accepted")
	}
	cfg := DefaultConfig()
	cfg.MaxStartups.Rate = 0
	cfg.StateDir, cfg.AuthorizedKeys = t.TempDir(), "x"
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "max startups") {
		t.Errorf("rate 0: %v, want a max startups error", err)
	}
}

// Drops are logged once a minute at most, with their count: a flood of
// connections must not flood the log.
func TestMaxStartupsDropReports(t *testing.T) {
	s := startups{limit: MaxStartups{Start: 1, Rate: 100, Full: 1}}
	now := time.Now()
	if ok, _, _ := s.admit(now); !ok {
		t.Fatal("the first connection was dropped")
	}
	var reports []int
	for i := range 100 {
		at := now.Add(time.Duration(i) * time.Second)
		if ok, _, report := s.admit(at); ok {
			t.Fatalf("connection %d past the limit admitted", i)
		} else if report > 0 {
			reports = append(reports, report)
		}
	}
	// At 0 s (1 drop), at 60 s (the 60 since).
	if len(reports) != 2 || reports[0] != 1 || reports[1] != 60 {
		t.Errorf("reports %v, want [1 60]", reports)
	}
}
