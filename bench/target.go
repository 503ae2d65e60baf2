//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"
)

// The target is the TCP service at the far end of every non-ssh scenario:
// a sink, a source and an echo in one listener. Each connection starts with
// a 9-byte request (a mode byte and a big-endian uint64 size), which the
// target acknowledges with one byte, so the client knows the whole path
// (proxy, agent, WebSocket, server, dial) is up before it starts a clock.
const (
	modeUpload   = 'U' // client sends size bytes; target answers with the 8-byte count
	modeDownload = 'D' // client sends 'G'; target sends size bytes, then FIN
	modeEcho     = 'E' // target echoes until EOF
	// modeRR answers every rrReqSize-byte request with rrRespSize bytes
	// until EOF: SFTP's read pattern, which scp downloads with.
	modeRR  = 'R'
	ackByte = 'K'
	goByte  = 'G'
	reqSize = 9
	// endless asks upload and download to go on until the client closes.
	endless = math.MaxInt64
)

// ioBufSize is the read and write size of the bench's own ends: large, so
// the bench process costs as little CPU as possible per byte.
const ioBufSize = 1 << 20

// target serves the request protocol on 127.0.0.1.
type target struct {
	ln  *net.TCPListener
	wg  sync.WaitGroup
	mu  sync.Mutex
	cs  map[net.Conn]struct{}
	buf []byte // read-only payload for downloads
}

func startTarget(payload []byte) (*target, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	t := &target{ln: ln, cs: make(map[net.Conn]struct{}), buf: payload}
	t.wg.Go(t.acceptLoop)
	return t, nil
}

func (t *target) Addr() string { return t.ln.Addr().String() }

// Close stops the listener, closes every connection and waits for every
// goroutine.
func (t *target) Close() {
	_ = t.ln.Close()
	t.mu.Lock()
	for c := range t.cs {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *target) acceptLoop() {
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		t.mu.Lock()
		t.cs[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Go(func() {
			defer func() {
				t.mu.Lock()
				delete(t.cs, c)
				t.mu.Unlock()
				_ = c.Close()
			}()
			_ = t.serve(c)
		})
	}
}

func (t *target) serve(c *net.TCPConn) error {
	var req [reqSize]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return err
	}
	size := int64(binary.BigEndian.Uint64(req[1:]))
	if _, err := c.Write([]byte{ackByte}); err != nil {
		return err
	}
	switch req[0] {
	case modeUpload:
		n, err := readN(c, size)
		if err != nil && !(size == endless && errors.Is(err, io.EOF)) {
			return err
		}
		var cnt [8]byte
		binary.BigEndian.PutUint64(cnt[:], uint64(n))
		if _, err := c.Write(cnt[:]); err != nil {
			return err
		}
		// Wait for the client to finish, so it never sees a reset.
		_, _ = io.Copy(io.Discard, c)
		return nil
	case modeDownload:
		var g [1]byte
		if _, err := io.ReadFull(c, g[:]); err != nil {
			return err
		}
		// A client that closes early (an endless download being stopped)
		// ends the transfer: watch for its EOF while writing.
		stop := make(chan struct{})
		t.wg.Go(func() {
			_, _ = io.Copy(io.Discard, c)
			close(stop)
			_ = c.Close()
		})
		err := writeN(c, t.buf, size)
		if err == nil {
			err = c.CloseWrite()
		}
		<-stop
		return err
	case modeEcho:
		_, err := io.CopyBuffer(c, c, make([]byte, 32<<10))
		return err
	case modeRR:
		return t.answer(c)
	}
	return fmt.Errorf("bad request mode %q", req[0])
}

// readN reads and discards up to n bytes, stopping early only at EOF or an
// error, and reports how many arrived.
func readN(r io.Reader, n int64) (int64, error) {
	buf := make([]byte, ioBufSize)
	var got int64
	for got < n {
		b := buf
		if rest := n - got; rest < int64(len(b)) {
			b = b[:rest]
		}
		k, err := r.Read(b)
		got += int64(k)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// writeN writes n bytes taken cyclically from payload.
func writeN(w io.Writer, payload []byte, n int64) error {
	for n > 0 {
		b := payload
		if int64(len(b)) > n {
			b = b[:n]
		}
		k, err := w.Write(b)
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}
