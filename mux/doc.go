// Package mux is the wire protocol that both halves of sandmux share: the
// WebSocket subprotocol names, the WebSocket-to-net.Conn adapter, the yamux
// configuration, the per-stream open header and its reply, and the splice
// that carries bytes (and half-closes) between two connections.
//
// The byte-level format is documented in spec.md beside this file.
package mux
