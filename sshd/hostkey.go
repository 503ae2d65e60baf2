package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the host key's file name inside the state directory: an
// ed25519 private key in OpenSSH format, mode 0600, with its public half
// beside it in HostKeyFile+".pub".
const HostKeyFile = "ssh_host_ed25519_key"

// HostKey is the server's identity.
type HostKey struct {
	// Signer signs the key exchange.
	Signer ssh.Signer
	// Path is the private key file.
	Path string
	// Generated is true when this call made the key.
	Generated bool
}

// PublicKey is the public key in authorized_keys and known_hosts format,
// e.g. "ssh-ed25519 AAAA...", without a newline.
func (k *HostKey) PublicKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey())))
}

// Fingerprint is the key's SHA256 fingerprint as ssh prints it
// ("SHA256:...").
func (k *HostKey) Fingerprint() string {
	return ssh.FingerprintSHA256(k.Signer.PublicKey())
}

// LoadHostKey loads the host key from stateDir, generating and saving a
// new ed25519 key (from crypto/rand) if there is none. Concurrent callers,
// in this process or others, end up with the same key: the file is
// written under a temporary name and linked into place only if no key
// appeared meanwhile.
func LoadHostKey(stateDir string) (*HostKey, error) {
	if stateDir == "" {
		return nil, fmt.Errorf("%w: no state directory for the host key", ErrInvalidConfig)
	}
	path := filepath.Join(stateDir, HostKeyFile)
	if k, err := readHostKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sandmux host key")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	tmp, err := os.CreateTemp(stateDir, "."+HostKeyFile+".*") // 0600
	if err != nil {
		return nil, fmt.Errorf("save host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pem.EncodeToMemory(block))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("save host key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process saved its key first: use that one.
			return readHostKey(path)
		}
		return nil, fmt.Errorf("save host key: %w", err)
	}
	k := &HostKey{Signer: signer, Path: path, Generated: true}
	// The public half is a convenience for people; the server never reads it.
	_ = os.WriteFile(path+".pub", []byte(k.PublicKey()+" sandmux host key\n"), 0o644)
	return k, nil
}

// CheckHostKey reads the host key in stateDir, if there is one yet, as
// LoadHostKey would, without generating one: a key that every login
// would refuse (unreadable, or open to other users) is refused at
// start-up instead, where the operator sees it, rather than in the log
// of each refused login.
func CheckHostKey(stateDir string) error {
	_, err := readHostKey(filepath.Join(stateDir, HostKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func readHostKey(path string) (*HostKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, hostKeyError(path, err)
	}
	defer f.Close()
	// The mode of the file read, not of the path's later occupant.
	fi, err := f.Stat()
	if err != nil {
		return nil, hostKeyError(path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("host key %s is a directory: remove it to have a new key generated there (it must be a private key file)", path)
	}
	if err := checkKeyMode(path, fi); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, hostKeyError(path, err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w (move it away to have a new one generated)", path, err)
	}
	return &HostKey{Signer: signer, Path: path}, nil
}

// hostKeyError names the path once and what to check: "read host key:
// open PATH: permission denied" said neither.
func hostKeyError(path string, err error) error {
	return fmt.Errorf("host key %s cannot be read: %w (check its permissions, or move it away to have a new one generated)", path, withoutPath(err))
}
