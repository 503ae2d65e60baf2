package server_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/server"
)

// sinkServer accepts connections and discards what they send.
func sinkServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	b.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// benchUpload measures one stream's upload through the whole tunnel.
func benchUpload(b *testing.B, noResume bool) {
	cfg := server.DefaultConfig()
	cfg.Target = sinkServer(b)
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer func() { hs.CloseClientConnections(); _ = srv.Close(); hs.Close() }()
	ccfg := client.DefaultConfig()
	ccfg.URL = "ws://" + hs.Listener.Addr().String()
	ccfg.NoResume = noResume
	sess, err := client.Dial(context.Background(), ccfg)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	c, err := sess.OpenStream(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = c.Close()
}

func BenchmarkUploadV1(b *testing.B) { benchUpload(b, true) }
func BenchmarkUploadV2(b *testing.B) { benchUpload(b, false) }
