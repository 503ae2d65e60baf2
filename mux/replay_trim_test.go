package mux

import "testing"

// TestTrimReusesTheReplaySlice: an acknowledgement shifts what is left of
// the replay down in the same slice, leaves no acknowledged buffer
// reachable past its end, and recycling the freed buffers allocates
// nothing once the two freed slices have grown: every allocation here
// brings the next garbage collection nearer, and each one empties the
// message pools.
func TestTrimReusesTheReplaySlice(t *testing.T) {
	r := testResumable(t)
	const n, size = 8, 64 << 10
	r.mu.Lock()
	for i := range n {
		buf := getMsg(frameRoom + 1 + size)
		r.replay = append(r.replay, chunk{start: uint64(i * size), buf: buf, msg: buf[frameRoom:]})
	}
	r.sent = n * size
	backing := r.replay[:n:n]
	r.trimLocked(3 * size)
	got := r.replay
	r.mu.Unlock()
	if len(got) != n-3 || &got[0] != &backing[0] {
		t.Fatalf("after acknowledging 3 of %d messages: %d left, same slice %v", n, len(got), &got[0] == &backing[0])
	}
	if got[0].start != 3*size {
		t.Fatalf("the first message left starts at %d, want %d", got[0].start, 3*size)
	}
	for i, c := range backing[n-3:] {
		if c.buf != nil {
			t.Fatalf("slot %d past the end still holds an acknowledged buffer", n-3+i)
		}
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.recycle()
	odd := make([]byte, 1) // not a pooled class: putMsg drops it
	allocs := testing.AllocsPerRun(100, func() {
		r.mu.Lock()
		r.freed = append(r.freed, odd)
		r.mu.Unlock()
		r.recycle()
	})
	if allocs != 0 {
		t.Errorf("recycling allocated %.0f times a round, want none", allocs)
	}
}
