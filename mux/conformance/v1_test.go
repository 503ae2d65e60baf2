package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/coder/websocket"
)

// The §1 upgrade and the §2 byte stream of sandmux.v1.

// maxMessage bounds what we accept in one WebSocket message: §9.1's 1 MiB
// (v1 has no limit of its own; its frames are at most 64 KiB + 12).
const maxMessage = 1 << 20

// dial upgrades with the offered subprotocols and extra headers.
func dial(ctx context.Context, url string, hdr http.Header, protos ...string) (*websocket.Conn, *http.Response, error) {
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols:    protos,
		HTTPHeader:      hdr,
		CompressionMode: websocket.CompressionDisabled, // §2
	})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(maxMessage)
	return c, resp, nil
}

// wsStream is §2: binary messages concatenated into one byte stream.
type wsStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *websocket.Conn
	r      io.Reader // the message being read
}

func newWSStream(c *websocket.Conn) *wsStream {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsStream{ctx: ctx, cancel: cancel, c: c}
}

func (w *wsStream) Read(p []byte) (int, error) {
	for {
		if w.r == nil {
			typ, r, err := w.c.Reader(w.ctx)
			if err != nil {
				return 0, err
			}
			if typ != websocket.MessageBinary {
				_ = w.c.Close(websocket.StatusUnsupportedData, "text message")
				return 0, fmt.Errorf("server sent a text message")
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if err == io.EOF {
			w.r = nil
			if n > 0 {
				return n, nil
			}
			continue // an empty message carries nothing (§2)
		}
		return n, err
	}
}

func (w *wsStream) WriteFrame(p []byte) error {
	return w.c.Write(w.ctx, websocket.MessageBinary, p)
}

func (w *wsStream) Close() error {
	err := w.c.Close(websocket.StatusNormalClosure, "")
	w.cancel()
	return err
}
