package mux

import "strings"

// Subprotocol is the WebSocket subprotocol a sandmux client offers and a
// sandmux server picks. Its suffix is the protocol version: a server that
// picks nothing (a plain websocat server) makes the client fall back to raw
// mode, where the single WebSocket is one byte stream to the default target.
const Subprotocol = "sandmux.v1"

// subprotocolPrefix marks every version of the protocol, so that a server can
// tell an unknown sandmux version (refused with a list of what it speaks)
// from a foreign subprotocol (served in raw mode).
const subprotocolPrefix = "sandmux."

// MaxStreamsHeader is the server's answer to a sandmux upgrade that says
// how many streams it carries at once per session (its --max-streams), so
// that a client that opens streams early (§5.4) can wait for the reply
// before a refusal for that limit would cost a stream its first bytes.
const MaxStreamsHeader = "Sandmux-Max-Streams"

// SupportedSubprotocols lists the versions this build speaks, newest first.
var SupportedSubprotocols = []string{SubprotocolResumable, Subprotocol}

// IsSandmuxSubprotocol reports whether p names any sandmux protocol version,
// known to this build or not.
func IsSandmuxSubprotocol(p string) bool {
	return strings.HasPrefix(p, subprotocolPrefix)
}
