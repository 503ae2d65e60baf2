package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestDialCertificateErrorsSayWhich: a certificate its CA vouches for can
// still fail for the host name (one made with `openssl req -subj /CN=host`
// names no host in its subject alternative names, which Go requires) or
// its dates. Those are not fixed by --ca, which the user may already have
// passed, so each says what is wrong with the certificate and what to do.
func TestDialCertificateErrorsSayWhich(t *testing.T) {
	now := time.Now()
	const hostLine = ": TLS certificate not valid for this host: … (connect by a name the certificate lists, or give the server a certificate whose subject alternative names include this one; a private CA also needs --ca FILE; --insecure skips verification)"
	for _, tc := range []struct {
		name string
		spec testutil.CertSpec
		host string // dialled instead of 127.0.0.1
		want string // the line after the URL; Go's own words on the name are left out
	}{
		{"another host's", testutil.CertSpec{CommonName: "sandbox.example", DNSNames: []string{"sandbox.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, "", hostLine},
		{"common name only", testutil.CertSpec{CommonName: "localhost", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, "localhost", hostLine},
		{"expired", testutil.CertSpec{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}, "", ": TLS certificate expired or not yet valid (renew the server's certificate, or check this machine's clock; --insecure skips verification)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, pem, err := testutil.MakeCert(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewUnstartedServer(http.NotFoundHandler())
			ts.Config.ErrorLog = log.New(io.Discard, "", 0)
			ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			ts.StartTLS()
			t.Cleanup(ts.Close)
			url := wsURL(ts.URL)
			if tc.host != "" {
				url = strings.Replace(url, "127.0.0.1", tc.host, 1)
			}
			cfg := testConfig(url)
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem) // the user's --ca
			cfg.TLS = &tls.Config{RootCAs: roots}
			de, err := dialErr(t, cfg)
			start, end, _ := strings.Cut(url+tc.want, "…")
			if got := err.Error(); !strings.HasPrefix(got, start) || !strings.HasSuffix(got, end) {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, url+tc.want)
			}
			if de.Temporary() {
				t.Fatal("a certificate error is not worth retrying")
			}
		})
	}
}
