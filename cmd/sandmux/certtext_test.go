package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"unicode"
)

// TestCertTextDropsControlCharacters: doctor names an untrusted
// certificate by its subject and issuer, which whoever answers the URL
// wrote (a hostile network's own certificate): they must not reach the
// terminal as escape sequences.
func TestCertTextDropsControlCharacters(t *testing.T) {
	const esc = "\x1b]0;title\x07\x1b[2Kevil"
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "host" + esc}, Issuer: pkix.Name{CommonName: "ca" + esc}}
	got := certText(c)
	if strings.ContainsFunc(got, unicode.IsControl) || !strings.Contains(got, "evil") {
		t.Fatalf("certText = %q: want the names without control characters", got)
	}
}
