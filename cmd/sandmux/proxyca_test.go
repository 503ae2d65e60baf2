package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
)

// The certificates an https:// proxy's roots are sent to the agent with
// are SSL_CERT_FILE's and every file's in SSL_CERT_DIR's directories, as
// Go's loader reads them, each once.
func TestProxyCAPEM(t *testing.T) {
	pems := make([][]byte, 3)
	for i := range pems {
		_, p, err := testutil.SelfSigned("proxy CA " + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		pems[i] = p
	}
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A bundle holding a and b with a private key between them (not a
	// certificate, not sent), and two directories: one with b again, c
	// under an OpenSSL hashed name linking to it, and a note; one that
	// does not exist.
	key := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	bundle := write("bundle.pem", bytes.Join([][]byte{pems[0], key, pems[1]}, nil))
	write("certs/b.pem", pems[1])
	write("certs/c.crt", pems[2])
	write("certs/README", []byte("not a certificate\n"))
	if runtime.GOOS != "windows" {
		if err := os.Symlink("c.crt", filepath.Join(tmp, "certs", "1a2b3c4d.0")); err != nil {
			t.Fatal(err)
		}
	}
	dirs := filepath.Join(tmp, "certs") + string(filepath.ListSeparator) + filepath.Join(tmp, "none")

	for _, tc := range []struct {
		name, file, dirs string
		want             int
	}{
		{"neither", "", "", 0},
		{"file", bundle, "", 2},
		{"dirs", "", dirs, 2},
		{"both", bundle, dirs, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := proxyCAPEM(tc.file, tc.dirs)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rest := []byte(got); ; n++ {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				if blk.Type != "CERTIFICATE" {
					t.Fatalf("sent a %s block", blk.Type)
				}
			}
			if n != tc.want {
				t.Fatalf("%d certificates sent, want %d:\n%s", n, tc.want, got)
			}
			if pool := x509.NewCertPool(); n > 0 && !pool.AppendCertsFromPEM([]byte(got)) {
				t.Fatal("the agent could not read what was sent")
			}
		})
	}

	t.Run("bad inputs", func(t *testing.T) {
		empty := write("empty.pem", []byte("nothing here\n"))
		var many []byte
		for len(many) <= maxProxyCAPEM {
			_, p, err := testutil.SelfSigned("many")
			if err != nil {
				t.Fatal(err)
			}
			many = append(many, p...)
		}
		big := write("big.pem", many)
		for _, tc := range []struct{ file, dirs, want string }{
			{filepath.Join(tmp, "missing.pem"), "", "read SSL_CERT_FILE, the https:// proxy's trusted certificates: "},
			{empty, "", "SSL_CERT_FILE " + empty + " holds no PEM certificate: name the https:// proxy's CA there, as PEM"},
			{bundle, bundle, "read SSL_CERT_DIR, the https:// proxy's trusted certificates: "},
			{big, "", "KiB of certificates, more than the agent takes (768 KiB): name only the proxy's CA in SSL_CERT_FILE, or use --no-agent"},
		} {
			_, err := proxyCAPEM(tc.file, tc.dirs)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("SSL_CERT_FILE=%s SSL_CERT_DIR=%s: %v, want one line with %q", tc.file, tc.dirs, err, tc.want)
			}
		}
	})
}
