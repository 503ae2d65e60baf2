package mux

import "testing"

// TestMsgClasses: a pooled message never pins more than twice its size
// (plus its frame header's room), the largest class holds the largest
// message, and a buffer not from a class is not pooled.
func TestMsgClasses(t *testing.T) {
	if got := msgClassCap(msgClasses - 1); got != pooledCap {
		t.Fatalf("largest class holds %d bytes, want pooledCap %d", got, pooledCap)
	}
	room := frameRoom + 1 + yamuxHeaderSize
	for _, size := range []int{pooledMessage, pooledMessage + 1, 32<<10 - yamuxHeaderSize, 32 << 10, 40 << 10, 64 << 10, 100 << 10, 200 << 10, maxReplayMessage} {
		n := frameRoom + 1 + size
		b := getMsg(n)
		if len(b) != n {
			t.Fatalf("getMsg(%d): len %d", n, len(b))
		}
		if payload := cap(b) - room; payload > 2*max(size-yamuxHeaderSize, 32<<10/2) {
			t.Errorf("a %d-byte message pins a buffer of %d: more than twice its size", size, cap(b))
		}
		class := -1
		for i := range msgClasses {
			if cap(b) == msgClassCap(i) {
				class = i
			}
		}
		if class < 0 {
			t.Errorf("a %d-byte message got a buffer of %d, which is no class", size, cap(b))
		} else if class > 0 && n <= msgClassCap(class-1) {
			t.Errorf("a %d-byte message got class %d, but class %d holds it", size, class, class-1)
		}
		putMsg(b)
	}
	if b := getMsg(pooledCap + 1); cap(b) != pooledCap+1 {
		t.Errorf("a message beyond the largest class got a buffer of %d, want its own", cap(b))
	}
	putMsg(make([]byte, 100)) // not a class: dropped, not pooled
	for range 100 {
		if b := getMsg(frameRoom + 1 + pooledMessage); cap(b) != msgClassCap(0) {
			t.Fatalf("the pool returned a buffer of %d for class 0 (%d)", cap(b), msgClassCap(0))
		}
	}
}
