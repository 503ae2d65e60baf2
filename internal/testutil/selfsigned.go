package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// SelfSigned makes a CA-flagged P-256 certificate named commonName for
// 127.0.0.1 and ::1, valid for a day, and returns it with its PEM: the
// PEM is what a client given it as a CA (--ca, SSL_CERT_FILE) trusts.
func SelfSigned(commonName string) (tls.Certificate, []byte, error) {
	return MakeCert(CertSpec{
		CommonName: commonName,
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:  time.Now().Add(-time.Hour),
		NotAfter:   time.Now().Add(24 * time.Hour),
	})
}

// CertSpec is what MakeCert puts in a certificate.
type CertSpec struct {
	CommonName          string
	DNSNames            []string
	IPs                 []net.IP
	NotBefore, NotAfter time.Time
}

// MakeCert makes a self-signed, CA-flagged P-256 certificate to spec (one
// for the wrong name, or expired, for tests of how they are refused), and
// returns it with its PEM, as SelfSigned does.
func MakeCert(spec CertSpec) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: spec.CommonName},
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPs,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
