// Package agent is the per-user background process that holds one shared
// sandmux session per sandbox (per distinct URL and credentials) for every
// ssh, scp and sftp process, and the client side that proxies use to reach
// it. Dialing, keepalive and reconnection with backoff live here and
// nowhere else.
//
// Proxies talk to the agent over a Unix socket in a directory only the
// user can enter; the agent also checks each peer's uid. A request is one
// length-prefixed JSON message; an accepted "open" request is followed by
// the stream's raw bytes in both directions.
package agent
