// Package conformance checks that mux/spec.md describes the wire protocol
// sandmux speaks, from both ends. Its tests hold a second client written
// from the spec alone, which frames yamux by hand, writes stream headers
// and the sandmux.v2 resumable messages byte by byte, and imports none of
// sandmux's protocol code (mux, client) to do so; they run it against the
// real server. They also hold a small server written from the same code
// (specServer) and run sandmux's real client against it. A spec that is
// silent or wrong where either side relies on it fails here rather than
// in another team's implementation.
//
// The package has no code of its own; everything lives in _test.go files.
package conformance
