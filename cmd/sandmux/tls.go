package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// tlsConfig builds the client TLS settings from --ca and --insecure.
func tlsConfig(caFile string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // --insecure is the user's explicit choice
	if caFile == "" {
		return tc, nil
	}
	pem, err := readFlagFile("ca", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s holds no PEM certificate", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}
