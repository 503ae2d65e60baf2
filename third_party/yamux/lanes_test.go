package yamux

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"
)

// gatedConn is a connection whose send gate refuses frames larger than
// small until opened.
type gatedConn struct {
	io.ReadWriteCloser
	small   int
	mu      sync.Mutex
	open    bool
	changed chan struct{}
}

func (g *gatedConn) Room(n int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open || n <= g.small
}

func (g *gatedConn) RoomChanged() <-chan struct{} { return g.changed }

func (g *gatedConn) openGate() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	g.changed <- struct{}{}
}

// A keystroke is not held up by a bulk frame that waits for room: the
// send loop sends it meanwhile, and the bulk frame, its stream's FIN
// after it, once there is room.
func TestUrgentFrameOvertakesGatedBulkFrame(t *testing.T) {
	c, s := testConnPipe(t)
	gc := &gatedConn{ReadWriteCloser: c, small: headerSize + urgentBody, changed: make(chan struct{}, 1)}
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 10 * time.Second
	client, err := Client(gc, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := Server(s, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	bulk, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	key, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}

	payload := bytes.Repeat([]byte{'b'}, 64<<10)
	wrote := make(chan error, 1)
	go func() {
		_, err := bulk.Write(payload)
		if err == nil {
			err = bulk.Close()
		}
		wrote <- err
	}()
	if _, err := key.Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	_ = sk.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(sk, got); err != nil {
		t.Fatalf("the keystroke did not get past the held bulk frame: %v", err)
	}
	select {
	case err := <-wrote:
		t.Fatalf("the bulk write finished while the gate was shut: %v", err)
	default:
	}

	gc.openGate()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(sb)
	if err != nil || !bytes.Equal(all, payload) {
		t.Fatalf("bulk stream: %d of %d bytes, %v", len(all), len(payload), err)
	}
}

// Small frames take the urgent lane; bulk data, FIN, RST and go-away
// keep their order in the ordinary one.
func TestLaneFor(t *testing.T) {
	s := &Session{sendCh: make(chan *sendReady), urgentCh: make(chan *sendReady)}
	hdr := func(typ uint8, flags uint16) header {
		h := header(make([]byte, headerSize))
		h.encode(typ, flags, 1, 0)
		return h
	}
	for _, c := range []struct {
		name   string
		hdr    header
		body   int
		urgent bool
	}{
		{"keystroke", hdr(typeData, 0), 1, true},
		{"largest urgent data", hdr(typeData, 0), urgentBody, true},
		{"bulk data", hdr(typeData, 0), urgentBody + 1, false},
		{"window update", hdr(typeWindowUpdate, 0), 0, true},
		{"SYN", hdr(typeWindowUpdate, flagSYN), 0, true},
		{"ping", hdr(typePing, flagSYN), 0, true},
		{"FIN", hdr(typeWindowUpdate, flagFIN), 0, false},
		{"data with FIN", hdr(typeData, flagFIN), 1, false},
		{"RST", hdr(typeWindowUpdate, flagRST), 0, false},
		{"go away", hdr(typeGoAway, 0), 0, false},
	} {
		if got := s.laneFor(c.hdr, c.body) == s.urgentCh; got != c.urgent {
			t.Errorf("%s: urgent %v, want %v", c.name, got, c.urgent)
		}
	}
}
