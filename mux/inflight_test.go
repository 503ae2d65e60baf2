package mux

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// drive feeds w acknowledgements every step on a path with round trip
// rtt delivering rate bytes per second, with inFlight bytes outstanding,
// for d of simulated time.
func drive(w *inflight, start time.Time, d, step, rtt time.Duration, rate float64, inFlight int) time.Time {
	now := start
	for end := start.Add(d); now.Before(end); now = now.Add(step) {
		w.sample(now, rtt, uint64(rate*rtt.Seconds()), rtt, inFlight)
	}
	return now
}

func TestInflightStartsAtTheCeiling(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	if got := w.limit(); got != 64<<20 {
		t.Fatalf("limit before any acknowledgement = %d, want the ceiling", got)
	}
}

func TestInflightLoopbackFallsToTheFloorOnlyWithAQueue(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	now := time.Unix(1000, 0)
	// 500 MB/s at 100 µs: a product of 100 KB. Little in flight: no queue,
	// so even a full path keeps the limit.
	now = drive(&w, now, 50*time.Millisecond, 500*time.Microsecond, 100*time.Microsecond, 500e6, 64<<10)
	if !w.full {
		t.Fatal("start-up did not end although the rate stopped growing")
	}
	if got := w.limit(); got != 64<<20 {
		t.Fatalf("limit = %d without a queue, want it unchanged at the ceiling", got)
	}
	// Now a queue: 8 MiB in flight. The limit falls to the floor within
	// milliseconds (half per 100 µs round trip).
	drive(&w, now, 5*time.Millisecond, 500*time.Microsecond, 100*time.Microsecond, 500e6, 8<<20)
	if got := w.limit(); got != 1<<20 {
		t.Fatalf("limit = %d with a standing queue on loopback, want the 1 MiB floor", got)
	}
}

func TestInflightWANSettlesAtTwiceTheProduct(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	now := time.Unix(1000, 0)
	// 200 MB/s at 50 ms: a product of 10 MB; keep 30 MB in flight so that
	// the limit has a reason to come down.
	drive(&w, now, 2*time.Second, time.Millisecond, 50*time.Millisecond, 200e6, 30e6)
	got, want := w.limit(), int(2*200e6*0.05)
	if got < want*9/10 || got > want*11/10 {
		t.Fatalf("limit = %d on a 50 ms path at 200 MB/s, want about %d (2 × bandwidth × RTT)", got, want)
	}
}

func TestInflightStartUpDoesNotCut(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	now := time.Unix(1000, 0)
	// The first acknowledgements of a 50 ms path report a rate that
	// doubles each round trip (yamux's first window held it back): the
	// limit must not fall while it grows.
	rate := 5e6
	for range 5 {
		now = drive(&w, now, 50*time.Millisecond, time.Millisecond, 50*time.Millisecond, rate, 32<<20)
		rate *= 2
		if got := w.limit(); got != 64<<20 {
			t.Fatalf("limit fell to %d during start-up", got)
		}
	}
}

func TestInflightResetForgetsThePath(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	drive(&w, time.Unix(1000, 0), 50*time.Millisecond, 500*time.Microsecond, 100*time.Microsecond, 500e6, 8<<20)
	w.reset()
	if w.limit() != 64<<20 || w.base != 0 || w.deliveryRate() != 0 {
		t.Fatalf("after reset: limit %d, base %v, rate %v; want the ceiling and nothing known", w.limit(), w.base, w.deliveryRate())
	}
}

// Until the path is judged full, frames are at least v1's 64 KiB: the
// first acknowledgements say nothing of the path. After it, they follow
// the delivery rate, down to minFrame on a slow path.
func TestFrameRateStartUp(t *testing.T) {
	w := newInflight(1<<20, 64<<20)
	if got := frameFor(w.frameRate(), 256<<10); got != v1Frame {
		t.Fatalf("frame before any acknowledgement: %d, want %d", got, v1Frame)
	}
	now := time.Unix(1000, 0)
	const rate = 1e6 // a slow path: 1 MB/s at 50 ms
	for i := 0; i < 20 && !w.full; i++ {
		now = drive(&w, now, 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, rate, 1<<20)
		if !w.full {
			if got := frameFor(w.frameRate(), 256<<10); got != v1Frame {
				t.Fatalf("frame in start-up: %d, want %d", got, v1Frame)
			}
		}
	}
	if !w.full {
		t.Fatal("a flat 1 MB/s path never left start-up")
	}
	if got := frameFor(w.frameRate(), 256<<10); got != minFrame {
		t.Fatalf("frame after start-up on a 1 MB/s path: %d, want %d", got, minFrame)
	}
}

func TestFrameFor(t *testing.T) {
	for _, c := range []struct {
		rate float64
		max  int
		want int
	}{
		{0, 256 << 10, minFrame},    // nothing measured yet
		{1e6, 256 << 10, minFrame},  // a slow uplink: 1 KB per ms
		{64e6, 256 << 10, 64000},    // 64 KB per ms
		{2e9, 256 << 10, 256 << 10}, // loopback: capped
		{2e9, 8 << 10, 8 << 10},     // a configured cap below minFrame wins
	} {
		if got := frameFor(c.rate, c.max); got != c.want {
			t.Errorf("frameFor(%v, %d) = %d, want %d", c.rate, c.max, got, c.want)
		}
	}
}

// sizeRecorder returns the reads of script in turn, recording the size of
// each buffer it was given.
type sizeRecorder struct {
	script []int
	sizes  []int
	src    []byte
}

func (r *sizeRecorder) Read(p []byte) (int, error) {
	if len(r.script) == 0 {
		return 0, io.EOF
	}
	r.sizes = append(r.sizes, len(p))
	n := min(r.script[0], len(p))
	r.script = r.script[1:]
	copy(p, r.src[:n])
	r.src = r.src[n:]
	return n, nil
}

func TestCopyStreamGrowsWhileReadsFillItAndShrinksWhenIdle(t *testing.T) {
	script := []int{100, smallCopyBuf, largeCopyBuf, 1000, 5, smallCopyBuf, smallCopyBuf + 1}
	total := 0
	for _, n := range script {
		total += n
	}
	src := make([]byte, total)
	for i := range src {
		src[i] = byte(i * 7)
	}
	r := &sizeRecorder{script: script, src: src}
	var dst bytes.Buffer
	if _, err := copyStream(&dst, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), src) {
		t.Fatal("copied bytes differ from the source")
	}
	want := []int{smallCopyBuf, smallCopyBuf, largeCopyBuf, largeCopyBuf, smallCopyBuf, smallCopyBuf, largeCopyBuf}
	if len(r.sizes) != len(want) {
		t.Fatalf("buffer sizes %v, want %v", r.sizes, want)
	}
	for i := range want {
		if r.sizes[i] != want[i] {
			t.Fatalf("buffer sizes %v, want %v", r.sizes, want)
		}
	}
}
