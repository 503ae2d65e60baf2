package mux

import "sync"

// A data message stays in the replay buffer until the peer acknowledges
// it, so its buffer must not be much larger than the message. Messages
// are as large as the reads that fill them, and a busy echo or sshd
// delivers 16–64 KiB at a time: with one 256 KiB class, each pinned four
// to sixteen times its size, and 20 busy sessions held over 600 MiB of
// buffers for a few MiB of unacknowledged bytes each (make soak). Classes
// that double keep every message within twice its size.

// pooledMessage is the smallest message kept in a pooled buffer; smaller
// ones (window updates, keystrokes) get one of their own size, so a replay
// buffer of many small messages does not pin a large buffer for each.
const pooledMessage = 16 << 10

// msgClasses is the number of pooled buffer sizes: messages of up to 32,
// 64, 128 and 256 KiB, each with room for its frame header before it.
const msgClasses = 4

// pooledCap is the capacity of the largest pooled buffer: the largest
// message and room for its frame header before it.
const pooledCap = frameRoom + 1 + maxReplayMessage

// msgClassCap is the capacity of class i's buffers.
func msgClassCap(i int) int {
	return pooledCap - (256<<10 - 32<<10<<i)
}

// msgPools recycle data message buffers, one pool per class.
var msgPools [msgClasses]sync.Pool

// getMsg returns a buffer of length n from the smallest class that holds
// it, or a buffer of its own if none does.
func getMsg(n int) []byte {
	for i := range msgClasses {
		if c := msgClassCap(i); n <= c {
			if bp, ok := msgPools[i].Get().(*[]byte); ok {
				return (*bp)[:n]
			}
			return make([]byte, n, c)
		}
	}
	return make([]byte, n)
}

// putMsg recycles b if it came from getMsg's pools; the caller must not
// use b afterwards.
func putMsg(b []byte) {
	for i := range msgClasses {
		if cap(b) == msgClassCap(i) {
			// A pointer of its own: &b would move b to the heap on
			// every call, pooled or not.
			bp := new([]byte)
			*bp = b[:0]
			msgPools[i].Put(bp)
			return
		}
	}
}
