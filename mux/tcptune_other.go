//go:build !linux && !darwin

package mux

import "net"

// TuneTCP does nothing where TCP_NOTSENT_LOWAT is not available.
func TuneTCP(net.Conn) {}
