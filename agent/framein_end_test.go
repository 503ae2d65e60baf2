package agent

import (
	"context"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A framing proxy sends its whole upload and its EOF frame, then closes
// without reading the reply (forward's local client closed) while the
// target talks back. The upload was complete; the target must read all of
// it and a clean end, however the agent's write to the closed proxy races
// its read of the EOF frame.
func TestFrameInUploadThenCloseIsNoReset(t *testing.T) {
	// Within a stream's 512 KiB start window: the whole upload must fit in
	// the tunnel while the target reads nothing, or the write waits for it.
	const size = 384 << 10
	talk := make(chan struct{})
	target, drained := testutil.SlowReaderServer(t, talk)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Allow = []string{target.Addr} })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	c, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, Target: target.Addr, Host: "box", ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	close(talk)
	_ = c.Close()
	if d := testutil.AwaitDrained(t, drained); d.N != size || d.Err != nil {
		t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.N, size, d.Err)
	}
}
