//go:build linux

package e2e

// Load: many concurrent streams of checksummed data through the built
// server, with its memory watched. The full soak is opt-in:
//
//	SANDMUX_SOAK=1 go test -run TestSoak -count=1 -timeout 20m ./e2e/
//
// TestSoakShort, a small version, runs with every `go test`.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// soakLoad is one round: streams spread evenly over sessions, each
// carrying size bytes to the echo target and back.
type soakLoad struct {
	sessions, streams, size int
}

func (l soakLoad) String() string {
	return fmt.Sprintf("%d streams × %d MiB over %d session(s)", l.streams, l.size>>20, l.sessions)
}

// rssSampler records a process's resident set size at a fixed interval.
type rssSampler struct {
	mu      sync.Mutex
	samples []int64 // KiB
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(t *testing.T, pid int, every time.Duration) *rssSampler {
	t.Helper()
	if _, err := readRSS(pid); err != nil {
		t.Skipf("cannot read the server's RSS: %v", err)
	}
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if kb, err := readRSS(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, kb)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the samples in KiB.
func (s *rssSampler) finish() []int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.samples...)
}

// readRSS is VmRSS of pid in KiB.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// peakOf is the largest sample.
func peakOf(samples []int64) int64 {
	var m int64
	for _, v := range samples {
		m = max(m, v)
	}
	return m
}

// logRSS logs samples (KiB) in MiB.
func logRSS(t *testing.T, what string, samples []int64) {
	t.Helper()
	mib := make([]string, len(samples))
	for i, s := range samples {
		mib[i] = strconv.FormatInt(s>>10, 10)
	}
	t.Logf("%s: server RSS (MiB) per sample: %s", what, strings.Join(mib, " "))
}

// checkFlat requires the last round's peak RSS to be no higher than 1.5×
// the first round's plus slack. Rounds carry the same load, so a working
// set peaks alike each time while a leak grows round over round; within a
// round the RSS only ramps up to the load's working set.
func checkFlat(t *testing.T, l soakLoad, peaks []int64, slackKiB int64) {
	t.Helper()
	mib := make([]string, len(peaks))
	for i, p := range peaks {
		mib[i] = strconv.FormatInt(p>>10, 10)
	}
	t.Logf("%s: peak server RSS per round (MiB): %s", l, strings.Join(mib, " "))
	if len(peaks) < 2 {
		return
	}
	first, last := peaks[0], peaks[len(peaks)-1]
	if limit := first*3/2 + slackKiB; last > limit {
		t.Errorf("%s: server RSS grew round over round: last round peaked at %d MiB, the first at %d MiB (limit %d MiB)",
			l, last>>10, first>>10, limit>>10)
	}
}

// soakStream writes size pseudo-random bytes (from seed) on c, half-closes,
// and checks that the echo has the same length and sha256.
func soakStream(c net.Conn, size int, seed uint64) error {
	var key [32]byte
	for i := range 4 {
		key[i] = byte(seed >> (8 * i))
	}
	src := rand.NewChaCha8(key)
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for left := size; left > 0; {
			n := min(left, len(buf))
			_, _ = src.Read(buf[:n])
			sent.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
			left -= n
		}
		werr <- c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.CopyBuffer(got, c, make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if err := <-werr; err != nil {
		return err
	}
	if n != int64(size) || string(got.Sum(nil)) != string(sent.Sum(nil)) {
		return fmt.Errorf("echo of %d bytes differs from the %d sent (sha256)", n, size)
	}
	return nil
}

// runLoad runs one round against url and fails the test on any loss.
func runLoad(t *testing.T, url string, l soakLoad) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sessions := make([]*client.Session, l.sessions)
	for i := range sessions {
		s, err := client.Dial(ctx, hardClient(url))
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		defer s.Close()
		sessions[i] = s
	}
	start := time.Now()
	errs := make(chan error, l.streams)
	var wg sync.WaitGroup
	for i := range l.streams {
		wg.Go(func() {
			c, err := sessions[i%l.sessions].OpenStream(ctx, "")
			if err != nil {
				errs <- fmt.Errorf("stream %d: open: %w", i, err)
				return
			}
			defer c.Close()
			if err := soakStream(c, l.size, uint64(i)+1); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d streams lost or corrupted data", failed, l.streams)
	}
	took := time.Since(start)
	total := float64(l.streams) * float64(l.size)
	t.Logf("%s: %v, %.0f MiB/s each way", l, took.Round(time.Millisecond), total/(1<<20)/took.Seconds())
}

// soak runs each load for rounds rounds against one `sandmux server`
// process, sampling its RSS every interval.
func soak(t *testing.T, every time.Duration, rounds int, loads ...soakLoad) {
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--keepalive", "1s"}})
	for _, l := range loads {
		var peaks []int64
		for r := range rounds {
			rss := sampleRSS(t, srv.cmd.Process.Pid, every)
			runLoad(t, srv.URL, l)
			samples := rss.finish()
			logRSS(t, fmt.Sprintf("%s, round %d", l, r+1), samples)
			peaks = append(peaks, peakOf(samples))
		}
		checkFlat(t, l, peaks, 64<<10)
	}
	if n := srv.Count(`msg="session ended"`); n == 0 {
		t.Errorf("the server logged no session end:\n%s", srv.Log())
	}
}

// TestSoakShort: 40 streams × 1 MiB over 4 sessions, twice, every byte
// checked and the server's memory compared between the rounds.
func TestSoakShort(t *testing.T) {
	soak(t, 200*time.Millisecond, 2, soakLoad{sessions: 4, streams: 40, size: 1 << 20})
}

// TestSoak (SANDMUX_SOAK=1): 200 concurrent streams × 16 MiB over one
// session, then over 20 sessions, each for SANDMUX_SOAK_ROUNDS rounds
// (default 3), every stream's sha256 checked and the server's RSS sampled
// every second: nothing may be lost and memory must not grow from round
// to round.
func TestSoak(t *testing.T) {
	if os.Getenv("SANDMUX_SOAK") == "" {
		t.Skip("set SANDMUX_SOAK=1 to run the soak (see `make soak`)")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("SANDMUX_SOAK_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	soak(t, time.Second, rounds,
		soakLoad{sessions: 1, streams: 200, size: 16 << 20},
		soakLoad{sessions: 20, streams: 200, size: 16 << 20})
}
