package main

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// proxyFor is the proxy the environment names for the server at rawURL,
// as curl, git and Go read it: HTTPS_PROXY for wss://, HTTP_PROXY for
// ws://, else ALL_PROXY (curl's, often socks5h://), unless NO_PROXY
// exempts the host (loopback always is). nil means a direct connection.
func proxyFor(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if isLoopbackHost(u.Hostname()) {
		// Every spelling cleartextCredentials takes for this machine,
		// not only Go's ("localhost." and "LOCALHOST" it proxies): a
		// token let through over ws:// for loopback must not then cross
		// the network to a proxy in clear text.
		return nil, nil
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: scheme, Host: u.Host}})
	if p != nil || err != nil || getenvAny(strings.ToUpper(scheme)+"_PROXY") != "" {
		// Go's answer, NO_PROXY's exemption included.
		return p, err
	}
	return allProxyFor(scheme, u.Host, os.Getenv)
}

// getenvAny is the variable name's value, upper case first, then lower
// case, as Go and curl read them.
func getenvAny(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// allProxyFor is ALL_PROXY (or all_proxy) for a server at host (host or
// host:port) reached over scheme (http or https), unless NO_PROXY exempts
// it, by the rules Go applies to HTTPS_PROXY.
func allProxyFor(scheme, host string, getenv func(string) string) (*url.URL, error) {
	raw := getenv("ALL_PROXY")
	if raw == "" {
		raw = getenv("all_proxy")
	}
	if raw == "" {
		return nil, nil
	}
	noProxy := getenv("NO_PROXY")
	if noProxy == "" {
		noProxy = getenv("no_proxy")
	}
	if !useProxy(scheme, host, noProxy) {
		return nil, nil
	}
	return parseProxy(raw)
}

// parseProxy reads a proxy variable's value as Go does: one without a
// scheme (proxy:3128) is an http:// proxy.
func parseProxy(raw string) (*url.URL, error) {
	p, err := url.Parse(raw)
	if err != nil || p.Scheme == "" || p.Host == "" {
		if p, err := url.Parse("http://" + raw); err == nil {
			return p, nil
		}
	}
	return p, err
}

// useProxy is golang.org/x/net/http/httpproxy's rule (which net/http
// applies to HTTP_PROXY and HTTPS_PROXY, and does not export): localhost
// and loopback addresses are never proxied, and NO_PROXY is a list of
// "*", IP addresses, CIDR ranges and domains, each optionally with a
// port.
func useProxy(scheme, hostport, noProxy string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	host = strings.ToLower(strings.TrimSpace(host))
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return false
	}
	for _, e := range strings.Split(noProxy, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "*":
			return false
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return false
			}
			continue
		}
		ehost, eport, err := net.SplitHostPort(e)
		if err != nil {
			ehost, eport = e, ""
		}
		ehost = strings.TrimSuffix(strings.TrimPrefix(ehost, "["), "]")
		if ehost == "" || eport != "" && eport != port {
			continue
		}
		if eip := net.ParseIP(ehost); eip != nil {
			if ip != nil && eip.Equal(ip) {
				return false
			}
			continue
		}
		// "example.com" is the host and its subdomains; ".example.com"
		// and "*.example.com" its subdomains only.
		ehost = strings.TrimPrefix(ehost, "*")
		if host == ehost || strings.HasSuffix(host, "."+strings.TrimPrefix(ehost, ".")) {
			return false
		}
	}
	return true
}
