package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/sandmux/sandmux/client"
)

// cleartextCredentials refuses to send credentials (the token, --header
// values such as e2b-traffic-access-token) over ws:// to a host beyond
// this machine, where anyone on the path reads them, and with them the
// session's resume secret: a ws:// URL is easily typed for a wss:// one,
// and nothing else would say so. --insecure sends them anyway.
func cleartextCredentials(cfg client.Config) error {
	var what []string
	if cfg.Token != "" {
		what = append(what, "the token")
	}
	if len(cfg.Header) > 0 {
		what = append(what, "the --header values")
	}
	u, err := url.Parse(cfg.URL)
	if len(what) == 0 || err != nil || u.Scheme != "ws" || isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%s would cross the network in clear text to %s (ws:// is not encrypted): use wss:// (E2B serves it), name a server on this machine 127.0.0.1 or localhost, or add --insecure to send %s anyway",
		strings.Join(what, " and "), u.Host, strings.Join(what, " and "))
}

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
