// Package conformance checks that mux/spec.md describes the wire protocol
// the server speaks. Its tests hold a second client written from the
// spec alone: it frames yamux by hand, writes stream headers and the
// sandmux.v2 resumable messages byte by byte, and imports none of
// sandmux's protocol code (mux, client), so a spec that is silent or
// wrong where the server relies on it fails here rather than in another
// team's implementation.
//
// The package has no code of its own; everything lives in _test.go files.
package conformance
