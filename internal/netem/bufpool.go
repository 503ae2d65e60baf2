package netem

import "sync"

const (
	// readSize is large so that bulk transfers cost few syscalls and few
	// queue entries per MiB.
	readSize = 64 << 10
	// minClass is the smallest pooled buffer; below it copying saves nothing.
	minClass = 512
	// numClasses covers minClass..readSize in powers of two.
	numClasses = 8
	bigClass   = numClasses - 1
)

// pools hold buffers by power-of-two size class. Small reads are copied into
// a buffer of their own class before being queued, because MaxInFlight bounds
// buffer memory: without this an interactive stream of tiny reads would pin a
// 64 KiB buffer per chunk and hit the limit after a few kilobytes of payload.
var pools [numClasses]sync.Pool

func init() {
	for i := range pools {
		size := minClass << i
		// *[]byte, not []byte, so Put does not allocate a slice header.
		pools[i].New = func() any {
			b := make([]byte, size)
			return &b
		}
	}
}

// classOf returns the smallest class whose buffers hold n bytes.
func classOf(n int) int {
	c := 0
	for c < bigClass && minClass<<c < n {
		c++
	}
	return c
}

func getBuf(class int) *[]byte { return pools[class].Get().(*[]byte) }

// putBuf relies on every pooled buffer having exactly a class size.
func putBuf(b *[]byte) { pools[classOf(cap(*b))].Put(b) }
