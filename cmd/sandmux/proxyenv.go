package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// proxyFor is the proxy the environment names for the server at rawURL,
// as curl, git and Go read it: HTTPS_PROXY for wss://, HTTP_PROXY for
// ws://, else ALL_PROXY (curl's, often socks5h://), unless NO_PROXY
// exempts the host (loopback always is). nil means a direct connection.
// The environment is read at each call: net/http's ProxyFromEnvironment,
// used before, reads it once per process, so the first call's setting
// held for every later one (in cmd's tests, one test's HTTPS_PROXY for
// the tests after it).
func proxyFor(rawURL string) (*url.URL, error) {
	return proxyFromEnv(rawURL, os.Getenv)
}

// proxyFromEnv is proxyFor with the environment read through getenv.
func proxyFromEnv(rawURL string, getenv func(string) string) (*url.URL, error) {
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
	raw := getenvAny(getenv, strings.ToUpper(scheme)+"_PROXY")
	if scheme == "http" && getenv("REQUEST_METHOD") != "" {
		// Under CGI, HTTP_PROXY is the request's Proxy header
		// (httpoxy): Go refuses it, and so does this.
		raw = ""
	}
	if raw == "" {
		raw = getenvAny(getenv, "ALL_PROXY")
	}
	if raw == "" || !useProxy(scheme, u.Host, getenvAny(getenv, "NO_PROXY")) {
		return nil, nil
	}
	return parseProxy(raw)
}

// getenvAny is the variable name's value, upper case first, then lower
// case, as Go and curl read them.
func getenvAny(getenv func(string) string, name string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return getenv(strings.ToLower(name))
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
	if err != nil {
		return nil, fmt.Errorf("invalid proxy address %q: %w", raw, err)
	}
	return p, nil
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
