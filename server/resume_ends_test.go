package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// The ends each case of TestResumeCutsAroundEnds gives its stream.
const (
	// endFIN: the client uploads and half-closes; the target reads to its
	// EOF, then answers and closes (FIN).
	endFIN = 'F'
	// endTargetFirst: the target answers and half-closes first; the
	// client reads to EOF, then uploads and half-closes.
	endTargetFirst = 'G'
	// endTargetRST: the target reads the upload, answers, then resets.
	endTargetRST = 'R'
	// endClientRST: the client uploads, then resets the stream.
	endClientRST = 'A'
)

// endsPreamble is what the client sends first: the case, the sizes of
// the upload and of the answer, and the answer's seed.
type endsPreamble struct {
	mode     byte
	up, down int
	seed     uint64
}

const endsPreambleSize = 25

func (p endsPreamble) bytes() []byte {
	b := []byte{p.mode}
	b = binary.BigEndian.AppendUint64(b, uint64(p.up))
	b = binary.BigEndian.AppendUint64(b, uint64(p.down))
	return binary.BigEndian.AppendUint64(b, p.seed)
}

// seeded is n bytes drawn from seed.
func seeded(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// endsReport is what the target read, and how its reading ended (nil:
// a FIN).
type endsReport struct {
	got []byte
	err error
}

// endsTarget plays its side of each case and reports what it read.
func endsTarget(t *testing.T) (*testutil.Server, <-chan endsReport) {
	t.Helper()
	ch := make(chan endsReport, 4)
	s := testutil.Serve(t, func(c net.Conn) {
		tc := c.(*net.TCPConn)
		var b [endsPreambleSize]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			ch <- endsReport{err: fmt.Errorf("preamble: %w", err)}
			return
		}
		p := endsPreamble{b[0], int(binary.BigEndian.Uint64(b[1:])), int(binary.BigEndian.Uint64(b[9:])), binary.BigEndian.Uint64(b[17:])}
		answer := seeded(p.seed, p.down)
		switch p.mode {
		case endFIN:
			got, err := io.ReadAll(c)
			if err == nil {
				_, err = c.Write(answer)
			}
			ch <- endsReport{got, err}
		case endTargetFirst:
			if _, err := c.Write(answer); err != nil {
				ch <- endsReport{err: err}
				return
			}
			_ = tc.CloseWrite()
			got, err := io.ReadAll(c)
			ch <- endsReport{got, err}
		case endTargetRST:
			got := make([]byte, p.up)
			_, err := io.ReadFull(c, got)
			if err == nil {
				_, err = c.Write(answer)
			}
			_ = tc.SetLinger(0)
			ch <- endsReport{got, err}
		case endClientRST:
			var got bytes.Buffer
			_, err := io.Copy(&got, c)
			ch <- endsReport{got.Bytes(), err}
		}
	})
	return s, ch
}

// endsSizes are the sizes, of an upload, an answer and each write, at
// the edges of frames, windows and messages: none, 1 byte, a 16 KiB
// frame, 256 KiB (a full yamux window, the largest frame), the largest
// message (256 KiB + 12), and past the window twice over.
var endsSizes = []int{0, 1, 16 << 10, 256 << 10, 256<<10 + 12, 512<<10 + 1}

// TestResumeCutsAroundEnds cuts the WebSocket (a reset), by byte marks,
// around where each stream's ends cross: the client's FIN or RST just
// written and not yet acknowledged, the target's FIN or RST on its way
// back, the open itself for a short upload, and sometimes a second cut
// right after, in the resume's upgrade or replay. Every end must reach
// the other side as what it was: data then a clean EOF after a FIN, an
// error (never EOF) after a reset; and every byte once, in order.
func TestResumeCutsAroundEnds(t *testing.T) {
	target, reports := endsTarget(t)
	rig := newResumeRig(t, target.Addr, 30*time.Second)
	aroundEnds(t, rig, reports, 16, rig.fault.CutAt, rig.fault.CutsAt)
}

// TestResumeStallsAroundEnds is TestResumeCutsAroundEnds with silent
// stalls for cuts: at each mark the path stops carrying bytes, for good,
// with no reset or close; only the silence watchdogs (DeadAfter) notice,
// and the client resumes on a new connection, which flows.
func TestResumeStallsAroundEnds(t *testing.T) {
	target, reports := endsTarget(t)
	rig := newResumeRigWith(t, target.Addr, 30*time.Second, func(c *mux.Config) { c.DeadAfter = 400 * time.Millisecond })
	stop := make(chan struct{})
	stranded := make(chan struct{})
	go func() {
		defer close(stranded)
		// Freezing every connection at the mark stops the transfer there;
		// stranding them and thawing lets new ones (the resume) flow.
		for seen := int64(0); ; {
			if !testutil.Poll(time.Minute, func() bool {
				select {
				case <-stop:
					return true
				default:
				}
				return rig.fault.FreezesAt() > seen
			}) {
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
			seen = rig.fault.FreezesAt()
			rig.fault.Strand()
			rig.fault.Thaw()
		}
	}()
	defer func() { close(stop); <-stranded }()
	aroundEnds(t, rig, reports, 6, rig.fault.FreezeAt, rig.fault.FreezesAt)
}

// aroundEnds runs cases of TestResumeCutsAroundEnds, arming marks
// for each with arm and counting those reached with fired.
func aroundEnds(t *testing.T, rig *resumeRig, reports <-chan endsReport, cases int, arm func(...int64), fired func() int64) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	for i := range cases {
		p := endsPreamble{
			mode: []byte{endFIN, endTargetFirst, endTargetRST, endClientRST}[i%4],
			up:   endsSizes[rng.IntN(len(endsSizes))], down: endsSizes[rng.IntN(len(endsSizes))],
			seed: rng.Uint64(),
		}
		if p.mode == endTargetRST && p.up == 0 {
			p.up = 1 // the target waits for a byte before it resets
		}
		write := rand.New(rand.NewPCG(rng.Uint64(), 5))
		// Marks from here: around the upload's end and the answer's,
		// give or take the framing, acknowledgements and pings on the
		// way; sometimes one more right behind a mark.
		base := rig.fault.Carried() + endsPreambleSize
		var marks []int64
		ends := []int{p.up, p.up + p.down}
		if p.mode == endClientRST {
			ends = ends[:1]
		}
		for _, at := range ends {
			m := base + int64(at) + rng.Int64N(8<<10) - 2<<10
			marks = append(marks, m)
			if rng.IntN(3) == 0 {
				marks = append(marks, m+1+rng.Int64N(4<<10))
			}
		}
		arm(marks...)
		before := fired()
		if err := endsCase(rig, p, func() int { return writeSize(write) }, reports); err != nil {
			t.Fatalf("case %d (%c, upload %d, answer %d, marks %v from %d): %v",
				i, p.mode, p.up, p.down, marks, base, err)
		}
		t.Logf("case %d (%c, upload %d, answer %d): %d faults", i, p.mode, p.up, p.down, fired()-before)
	}
	arm()
	st := rig.sess.Mux().Stats()
	t.Logf("faults %d, resumes %d, replayed %d bytes", fired(), st.Resumes, st.Replayed)
}

// writeSize is the size of one write: one of endsSizes but none, now
// and then any size up to the largest.
func writeSize(rng *rand.Rand) int {
	if rng.IntN(4) == 0 {
		return 1 + rng.IntN(endsSizes[len(endsSizes)-1])
	}
	return endsSizes[1+rng.IntN(len(endsSizes)-1)]
}

// endsCase runs one stream through its case and checks both sides.
func endsCase(rig *resumeRig, p endsPreamble, write func() int, reports <-chan endsReport) error {
	conn, err := openRetry(rig.sess)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer conn.Close()
	// Bytes or an end lost leave a reader waiting for them.
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	st := conn.(*mux.Stream)
	upload := seeded(p.seed^0xa5a5, p.up)
	answer := seeded(p.seed, p.down)
	send := func() error {
		if _, err := conn.Write(p.bytes()); err != nil {
			return err
		}
		for rest := upload; len(rest) > 0; {
			n := min(len(rest), write())
			if _, err := conn.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	}
	finish := func() error {
		if err := st.CloseWrite(); err != nil {
			return fmt.Errorf("close write: %w", err)
		}
		if _, err := conn.Write([]byte("late")); err == nil {
			return errors.New("a write after CloseWrite succeeded")
		}
		return nil
	}
	var got []byte
	var readErr error
	switch p.mode {
	case endFIN:
		werr := make(chan error, 1)
		go func() {
			err := send()
			if err == nil {
				err = finish()
			}
			werr <- err
		}()
		got, readErr = io.ReadAll(conn)
		if err := <-werr; err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	case endTargetFirst:
		if _, err := conn.Write(p.bytes()); err != nil {
			return err
		}
		got, readErr = io.ReadAll(conn)
		if readErr == nil {
			// Half-closed by the target: the other way still carries.
			for rest := upload; len(rest) > 0; {
				n := min(len(rest), write())
				if _, err := conn.Write(rest[:n]); err != nil {
					return fmt.Errorf("upload after the target's FIN: %w", err)
				}
				rest = rest[n:]
			}
			if err := finish(); err != nil {
				return err
			}
		}
	case endTargetRST:
		if err := send(); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		got, readErr = io.ReadAll(conn)
		if readErr == nil {
			return fmt.Errorf("the target reset its connection, the client read %d bytes and a clean EOF", len(got))
		}
		if !bytes.HasPrefix(answer, got) {
			return fmt.Errorf("before the reset the client read %d bytes that are not the answer's first", len(got))
		}
		readErr, got = nil, answer
	case endClientRST:
		if err := send(); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		st.Abort()
	}
	if readErr != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), readErr)
	}
	if p.mode != endClientRST && !bytes.Equal(got, answer) {
		return fmt.Errorf("client read %d bytes, not the %d answered: %s", len(got), len(answer), diffAt(answer, got))
	}
	var r endsReport
	select {
	case r = <-reports:
	case <-time.After(waitTimeout):
		return errors.New("the target did not finish")
	}
	switch p.mode {
	case endClientRST:
		if !errors.Is(r.err, syscall.ECONNRESET) {
			return fmt.Errorf("the client reset its stream; the target read %d bytes, then %v, want a reset", len(r.got), r.err)
		}
		if !bytes.HasPrefix(upload, r.got) {
			return fmt.Errorf("the target read %d bytes that are not the upload's first", len(r.got))
		}
	default:
		if r.err != nil {
			return fmt.Errorf("the target read %d bytes, then %w", len(r.got), r.err)
		}
		if !bytes.Equal(r.got, upload) {
			return fmt.Errorf("the target read %d bytes, not the %d uploaded: %s", len(r.got), len(upload), diffAt(upload, r.got))
		}
	}
	return nil
}
