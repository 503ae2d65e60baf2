package yamux

import (
	"runtime"
	"testing"
)

// A peer sending pings without end and reading nothing gets at most
// pongBacklog answers queued for one goroutine: a goroutine per ping,
// each waiting to send its answer, grew goroutines and memory without
// bound, 1.4 million and 4.8 GB in 20 s from one client (sandmux patch).
func TestPingFloodBounded(t *testing.T) {
	raw, conn := testConnTCP(t)
	cfg := testConf()
	cfg.EnableKeepAlive = false
	server, err := Server(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	before := runtime.NumGoroutine()
	const pings, batch = 100000, 1000
	buf := make([]byte, 0, headerSize*batch)
	for i := 0; i < pings; i += batch {
		buf = buf[:0]
		for j := range batch {
			hdr := header(make([]byte, headerSize))
			hdr.encode(typePing, flagSYN, 0, uint32(i+j))
			buf = append(buf, hdr...)
		}
		if _, err := raw.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A stream opened after them is accepted once the server has read
	// every ping before it.
	syn := header(make([]byte, headerSize))
	syn.encode(typeWindowUpdate, flagSYN, 1, 0)
	if _, err := raw.Write(syn); err != nil {
		t.Fatal(err)
	}
	if _, err := server.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine() - before; n > 50 {
		t.Fatalf("%d goroutines more after %d pings the peer never reads answers to", n, pings)
	}
}
