package yamux

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// A stream written by one goroutine while another closes it puts no byte
// on the wire after its FIN: a Write that returns has had exactly the
// bytes it reports sent before the FIN, and its error says the stream was
// closed (sandmux patch). Upstream set the stream closed and queued the
// FIN with nothing to stop a Write that had checked the state just
// before from queueing its data after the FIN: the Write succeeded, and
// the peer, whose side was closed too, dropped the bytes ("Discarding
// data for stream").
func TestWriteCloseRaceNoDataAfterFIN(t *testing.T) {
	const rounds = 300
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 512) // 8 KiB: the bulk lane, as the FIN
	for round := range rounds {
		c, s := testConnPipe(t)
		client, server := testClientServerConfig(t, c, s, testConfNoKeepAlive(), testConfNoKeepAlive())
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte("0")); err != nil {
			t.Fatal(err)
		}
		peer, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// The peer finishes its side first, so that it drops whatever
		// comes after this side's FIN instead of reading it.
		if err := peer.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read %v, want the peer's end", err)
		}
		var (
			wg    sync.WaitGroup
			wrote int
			werr  error
		)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			for werr == nil {
				var n int
				n, werr = st.Write(chunk)
				wrote += n
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			for range round % 7 {
				runtime.Gosched() // vary where in a Write the Close lands
			}
			_ = st.Close()
		}()
		close(start)
		wg.Wait()
		if !errors.Is(werr, ErrStreamClosed) {
			t.Fatalf("round %d: the write failed with %v, want ErrStreamClosed", round, werr)
		}
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(peer)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != wrote {
			t.Fatalf("round %d: the writer was told %d bytes went, the peer read %d before the FIN", round, wrote, len(got))
		}
		_ = client.Close()
		_ = server.Close()
	}
}
