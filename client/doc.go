// Package client is the laptop half of sandmux: it dials a sandmux server
// over WebSocket, offering the sandmux subprotocol and falling back to raw
// mode when the server is a plain WebSocket-to-TCP bridge, and opens
// streams to targets in the sandbox. The agent and the proxy both build on
// it.
package client
