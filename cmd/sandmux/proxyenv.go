package main

import (
	"net/http"
	"net/url"
)

// proxyFor is the HTTP proxy the environment names for the server at
// rawURL, as curl, git and Go read it: HTTPS_PROXY for wss://, HTTP_PROXY
// for ws://, unless NO_PROXY exempts the host (loopback always is). nil
// means a direct connection.
func proxyFor(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: scheme, Host: u.Host}})
}
