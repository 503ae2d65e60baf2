// Package netem is a loopback TCP proxy that makes a fast local link behave
// like a long, fat and unreliable network path, so benchmarks and fault tests
// of the tunnel see realistic latency and failures without root privileges,
// tc/netem or a second machine.
//
// Latency is modelled as a pipe, not as a sleep per chunk: bytes are released
// at their read time plus the configured delay, so throughput is limited only
// by how much may be in flight (bandwidth × delay), as on a real path.
// Config.Rate adds a link of that bandwidth each way, shared by every
// connection, so a path can be slow as well as long.
// Since the proxy accepts connections locally, a new connection would skip
// the round trip of TCP's handshake; Config.Handshake charges it.
//
// Faults are injected on demand: Cut resets every live connection the way a
// dropped NAT entry or crashed middlebox would (CutAt: when the bytes carried
// reach a mark, however fast they move), and Freeze/Thaw stall traffic
// without closing anything, the way a black-holed route does (FreezeToTarget:
// one way only, with HeldToTarget showing what waits behind it; FreezeAt and
// FreezeToTargetAt: at a mark, so a transfer waits there for a test to act),
// and Throttle slows the path to a trickle and back.
package netem
