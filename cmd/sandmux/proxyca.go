package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxProxyCAPEM bounds the certificates sent to the agent with a request:
// a Debian /etc/ssl/certs holds some 290 KB of distinct ones, and the
// agent takes requests of up to 1 MiB.
const maxProxyCAPEM = 768 << 10

// proxyCAPEM is the certificates named by SSL_CERT_FILE and SSL_CERT_DIR
// (dirs joined by ':', as Go and OpenSSL read it), each once, as PEM: an
// https:// proxy's roots, for the agent, which read its own when it
// started. "" when neither is set.
func proxyCAPEM(file, dirs string) (string, error) {
	var out bytes.Buffer
	seen := map[string]bool{}
	add := func(b []byte) {
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				return
			}
			if blk.Type != "CERTIFICATE" || seen[string(blk.Bytes)] {
				continue
			}
			seen[string(blk.Bytes)] = true
			_ = pem.Encode(&out, &pem.Block{Type: blk.Type, Bytes: blk.Bytes})
		}
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read SSL_CERT_FILE, the https:// proxy's trusted certificates: %w", err)
		}
		if add(b); out.Len() == 0 {
			return "", fmt.Errorf("SSL_CERT_FILE %s holds no PEM certificate: name the https:// proxy's CA there, as PEM", file)
		}
	}
	for _, d := range filepath.SplitList(dirs) {
		if d == "" {
			continue
		}
		if err := addCertDir(d, add); err != nil {
			return "", fmt.Errorf("read SSL_CERT_DIR, the https:// proxy's trusted certificates: %w", err)
		}
	}
	if out.Len() > maxProxyCAPEM {
		return "", fmt.Errorf("SSL_CERT_FILE and SSL_CERT_DIR hold %d KiB of certificates, more than the agent takes (%d KiB): name only the proxy's CA in SSL_CERT_FILE, or use --no-agent", out.Len()>>10, maxProxyCAPEM>>10)
	}
	return out.String(), nil
}

// addCertDir hands add every file in dir, as Go's own loader reads one: a
// directory that does not exist counts as empty, subdirectories and
// unreadable entries are passed over, and symlinks to a file in dir
// itself (OpenSSL's hashed names) are not read twice.
func addCertDir(dir string, add func([]byte)) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			if t, err := os.Readlink(p); err == nil && !strings.ContainsRune(t, filepath.Separator) {
				continue
			}
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			add(b)
		}
	}
	return nil
}
