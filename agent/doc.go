// Package agent is the per-user background process that holds one shared
// sandmux session per sandbox (per distinct URL and credentials) for every
// ssh, scp and sftp process, and the client side that proxies use to reach
// it. Dialing, keepalive and reconnection with backoff live here and
// nowhere else.
//
// Proxies talk to the agent over a Unix socket in a directory only the
// user can enter; the agent also checks each peer's uid. A request is one
// length-prefixed JSON message. An accepted "open" request is followed
// either by the stream's bytes (framed towards the proxy, see frame.go) or,
// when the proxy's stdin and stdout are pipes or sockets, by the hand-off
// of those descriptors, so that the agent reads and writes ssh's pipes
// itself and the proxy only waits for the verdict (see handoff.go).
package agent
