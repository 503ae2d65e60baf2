package mux

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// TestSmallFrameIsOneMessageWithoutAcks: on a resumable session, a small
// yamux data frame (header and body, written separately by yamux's send
// loop) goes out as one WebSocket message, and receiving small messages
// one at a time draws no acknowledgement per message (they come every
// AckEvery bytes, or from the once-a-second tick). Each message is a
// write and a wake-up of the peer, the cost of a round trip through the
// tunnel (bench/PERFORMANCE.md).
func TestSmallFrameIsOneMessageWithoutAcks(t *testing.T) {
	const rounds = 200
	cli, srv := wsPair(t)
	r := testResumable(t)
	if _, err := r.Attach(Link{WS: cli, Client: true}, 0, nil); err != nil {
		t.Fatal(err)
	}
	// The peer, played by hand: counts what r sends and echoes each data
	// message's payload back as a data message of its own.
	var (
		mu          sync.Mutex
		data, acks  int
		badSize     int
		peerStopped = make(chan struct{})
	)
	go func() {
		defer close(peerStopped)
		for {
			_, b, err := srv.Read(noDeadline)
			if err != nil {
				return
			}
			mu.Lock()
			switch b[0] {
			case msgData:
				data++
				if len(b) != 1+yamuxHeaderSize+64 {
					badSize++
				}
			case msgAck:
				acks++
			}
			mu.Unlock()
			if b[0] == msgData {
				if err := srv.Write(noDeadline, websocket.MessageBinary, b); err != nil {
					return
				}
			}
		}
	}()
	var hdr [yamuxHeaderSize]byte
	hdr[1] = yamuxTypeData
	binary.BigEndian.PutUint32(hdr[4:], 1)
	binary.BigEndian.PutUint32(hdr[8:], 64)
	body := make([]byte, 64)
	got := make([]byte, yamuxHeaderSize+64)
	for range rounds {
		if _, err := r.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Write(body); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
	}
	_ = cli.CloseNow()
	<-peerStopped
	mu.Lock()
	defer mu.Unlock()
	if data != rounds || badSize != 0 {
		t.Errorf("%d data messages (%d not header and body together) for %d frames, want one each", data, badSize, rounds)
	}
	// The tick may acknowledge once a second; one per message would be
	// rounds of them.
	if acks > rounds/8 {
		t.Errorf("%d acknowledgements for %d small messages received", acks, rounds)
	}
}
