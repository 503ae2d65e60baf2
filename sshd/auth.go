package sshd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// authorizedKey is one usable line of authorized_keys.
type authorizedKey struct {
	key         ssh.PublicKey
	fingerprint string
	// Restrictions from the line's options.
	noPTY, noPortForwarding bool
	noTouchRequired         bool // security keys may sign without a touch
	// skipped is set when the line has an option the server cannot
	// enforce: the key stays listed so that it is refused, not granted
	// by a later line.
	skipped bool
}

// keySet is the keys of one load, in file order, with what was skipped
// and why.
type keySet struct {
	keys    []authorizedKey
	skipped []string // "FILE line N: reason"
	// fileMissing: the authorized keys file was not there (it is read
	// again at every login).
	fileMissing bool
}

// find returns the entry for key, or nil. As in OpenSSH, the first line
// naming the key decides: if that line was skipped the key is refused,
// since OpenSSH would apply its options (a forced command, say) and a
// later line must not grant what that one withholds.
func (s *keySet) find(key ssh.PublicKey) *authorizedKey {
	b := key.Marshal()
	for i := range s.keys {
		if bytes.Equal(s.keys[i].key.Marshal(), b) {
			if s.keys[i].skipped {
				return nil
			}
			return &s.keys[i]
		}
	}
	return nil
}

// usable is the number of keys that can log in.
func (s *keySet) usable() int {
	n := 0
	for i := range s.keys {
		if !s.keys[i].skipped {
			n++
		}
	}
	return n
}

// loadKeys reads the configured keys: the text, then the file. A missing
// file adds no keys; any other read error is returned.
func loadKeys(cfg *Config) (*keySet, error) {
	s := &keySet{}
	if cfg.AuthorizedKeys != "" {
		s.parse([]byte(cfg.AuthorizedKeys), "authorized keys text")
	}
	if cfg.AuthorizedKeysFile != "" {
		b, err := os.ReadFile(cfg.AuthorizedKeysFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			s.fileMissing = true
		case err != nil:
			return s, keysFileError(cfg.AuthorizedKeysFile, err)
		default:
			s.parse(b, cfg.AuthorizedKeysFile)
		}
	}
	return s, nil
}

// keysFileError says why the authorized keys file cannot be read and what
// to do, naming the path once: "read authorized keys: read /tmp: is a
// directory" said neither what the file must be nor what to check.
func keysFileError(path string, err error) error {
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("authorized keys file %s is a directory: name a file of public keys instead, one per line as in ~/.ssh/authorized_keys", path)
	}
	return fmt.Errorf("authorized keys file %s cannot be read: %w (check its permissions: it must be a file of public keys the server's user can read)", path, withoutPath(err))
}

// withoutPath is err less its *fs.PathError, for a line that names the
// path once, itself.
func withoutPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// parse adds every line of data that holds a key. Lines that do not
// parse are skipped; keys with options this server cannot enforce
// (command=, from=, permitopen= ...) are kept but marked skipped, so that
// find refuses them: honouring such a key without its restriction would
// grant more than its owner wrote.
func (s *keySet) parse(data []byte, source string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, opts, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			s.skipped = append(s.skipped, fmt.Sprintf("%s line %d: %v", source, n, err))
			continue
		}
		if _, ok := key.(*ssh.Certificate); ok {
			// OpenSSH takes certificates only through cert-authority,
			// checking principals and validity; matching the listed
			// certificate byte for byte would ignore both.
			s.skipped = append(s.skipped, fmt.Sprintf("%s line %d: a certificate, which the embedded server does not support; list the plain public key instead", source, n))
			continue
		}
		k := authorizedKey{key: key, fingerprint: ssh.FingerprintSHA256(key)}
		if bad := k.applyOptions(opts); bad != "" {
			s.skipped = append(s.skipped, fmt.Sprintf("%s line %d: key %s has option %q, which the embedded server does not support (the key is refused)", source, n, k.fingerprint, bad))
			k.skipped = true
		}
		s.keys = append(s.keys, k)
	}
	if err := sc.Err(); err != nil {
		s.skipped = append(s.skipped, fmt.Sprintf("%s: %v", source, err))
	}
}

// applyOptions sets the restrictions the options ask for and returns the
// first option it cannot honour, or "".
func (k *authorizedKey) applyOptions(opts []string) string {
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		switch strings.ToLower(name) {
		case "restrict":
			k.noPTY, k.noPortForwarding = true, true
		case "no-pty":
			k.noPTY = true
		case "pty":
			k.noPTY = false
		case "no-port-forwarding":
			k.noPortForwarding = true
		case "port-forwarding":
			k.noPortForwarding = false
		case "no-touch-required":
			k.noTouchRequired = true
		case "no-agent-forwarding", "no-x11-forwarding", "no-user-rc",
			"agent-forwarding", "x11-forwarding", "user-rc":
			// Agent and X11 forwarding and ~/.ssh/rc do not exist here.
		default:
			return o
		}
	}
	return ""
}

// Permission extensions carried from authentication to the connection.
const (
	extFingerprint      = "sandmux-key-fingerprint"
	extNoPTY            = "sandmux-no-pty"
	extNoPortForwarding = "sandmux-no-port-forwarding"
	extNoTouchRequired  = "no-touch-required" // x/crypto's name
)

func (k *authorizedKey) permissions() *ssh.Permissions {
	ext := map[string]string{extFingerprint: k.fingerprint}
	if k.noPTY {
		ext[extNoPTY] = ""
	}
	if k.noPortForwarding {
		ext[extNoPortForwarding] = ""
	}
	if k.noTouchRequired {
		// x/crypto checks a security key's user-presence flag unless
		// the permissions carry this extension.
		ext[extNoTouchRequired] = ""
	}
	return &ssh.Permissions{Extensions: ext}
}
