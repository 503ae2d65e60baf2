package server_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestResumeCutInResumeHandshake cuts the WebSocket and then, at a byte
// of the resume that follows, cuts it again: in the upgrade, the HELLO,
// the WELCOME (written by the server and not yet read, say) or the replay
// behind it, while streams move data in both directions. A cut anywhere
// in a resume is one more outage: the next attempt resumes from the same
// counts, and every stream reads back exactly what it wrote.
func TestResumeCutInResumeHandshake(t *testing.T) {
	rig := newResumeRig(t, testutil.EchoServer(t).Addr, 30*time.Second)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))

	done, errs := echoStreams(rig.sess, []int{1 << 20, 2<<20 + 12, 3 << 20}, rng)

	var offsets []int64
	for range 12 {
		select {
		case <-done:
		default:
			// Frozen, the proxy reads nothing: the count after the cut is
			// where the next connection's bytes begin.
			off := 1 + rng.Int64N(1500)
			rig.fault.Freeze()
			rig.fault.Cut()
			rig.fault.CutAt(rig.fault.Carried() + off)
			rig.fault.Thaw()
			offsets = append(offsets, off)
			before := rig.sess.Mux().Stats().Resumes
			// Resumed, and attached now: after the second cut, or before
			// it if it lands in the replay (the next cut then follows
			// a resume of its own).
			testutil.WaitFor(t, 20*time.Second, "a resume", func() bool {
				return rig.sess.Mux().Stats().Resumes > before && !rig.sess.Resuming()
			})
			continue
		}
		break
	}
	rig.fault.CutAt()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the streams did not finish")
	}
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := rig.sess.Mux().Stats()
	t.Logf("second cuts at %v bytes into the resume: %d of them landed; resumes %d, replayed %d bytes",
		offsets, rig.fault.CutsAt(), st.Resumes, st.Replayed)
	if len(offsets) > 0 && rig.fault.CutsAt() == 0 {
		t.Errorf("no second cut landed in %d resumes", len(offsets))
	}
}
