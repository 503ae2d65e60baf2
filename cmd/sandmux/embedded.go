package main

// `sandmux server --ssh embedded`: the sshd package's server on a loopback
// listener, made the server's default target.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/sshd"
)

// envAuthorizedKeys holds public keys (authorized_keys lines) for the
// embedded server, in addition to --authorized-keys.
const envAuthorizedKeys = "SANDMUX_AUTHORIZED_KEYS"

// errNeedKeys is the one line a user sees when the embedded server has no
// key to accept.
var errNeedKeys = errors.New("--ssh embedded needs authorized keys: set --authorized-keys FILE or " + envAuthorizedKeys)

func embeddedFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ssh", Value: "external", EnvVars: []string{"SANDMUX_SSH"}, Usage: "`MODE`: external forwards streams to --target (OpenSSH's sshd); embedded runs sandmux's own SSH server, no sshd needed"},
		&cli.StringFlag{Name: "state-dir", EnvVars: []string{"SANDMUX_STATE_DIR"}, Usage: "`DIR` for the embedded server's host key (default $XDG_STATE_HOME/sandmux, else ~/.local/state/sandmux)", TakesFile: true, Action: nonEmpty("state-dir", "the directory for the host key")},
		&cli.StringFlag{Name: "authorized-keys", Action: nonEmpty("authorized-keys", "the authorized_keys file"), Usage: "authorized_keys `FILE` for the embedded server, read at every login (default ~/.ssh/authorized_keys); keys in " + envAuthorizedKeys + " are accepted too", TakesFile: true},
		&cli.StringFlag{Name: "max-startups", Value: "10:30:100", Usage: "embedded server: connections not yet logged in, as OpenSSH's `START:RATE:FULL` (random early drop of RATE % from START, all from FULL); raise it for many parallel logins (parallel sftp)"},
		&cli.BoolFlag{Name: "print-host-key", Usage: "print the embedded server's host public key and fingerprint, generating the key if there is none, and exit"},
	}
}

// embedded is a running embedded SSH server; a nil *embedded is none.
type embedded struct {
	srv     *sshd.Server
	served  chan error
	closing atomic.Bool
}

// startEmbedded starts the embedded SSH server when --ssh embedded asks
// for it and points cfg.Target at it. It returns nil for --ssh external.
func startEmbedded(c *cli.Context, log *slog.Logger, cfg *server.Config) (*embedded, error) {
	switch mode := c.String("ssh"); mode {
	case "external":
		if c.IsSet("max-startups") {
			return nil, errors.New("--max-startups is the embedded SSH server's (--ssh embedded); for OpenSSH's sshd, set MaxStartups in sshd_config")
		}
		// Ignored, they left OpenSSH's sshd refusing a key the
		// operator thought given. (Their variables may be set for
		// other servers, and still are ignored.)
		for _, f := range []string{"authorized-keys", "state-dir"} {
			if onCommandLine(c, []string{f}) {
				return nil, fmt.Errorf("--%s is the embedded SSH server's: add --ssh embedded, or drop --%s (OpenSSH's sshd reads its own keys and files)", f, f)
			}
		}
		return nil, nil
	case "embedded":
	default:
		return nil, fmt.Errorf("%s: use external or embedded", valueRef(c, "ssh")(strconv.Quote(mode)))
	}
	if given(c, "target") {
		return nil, errors.New("--target (or SANDMUX_TARGET) names an external sshd; with --ssh embedded the target is the embedded server (drop --target, or use --ssh external)")
	}
	scfg, err := embeddedConfig(c, log)
	if err != nil {
		return nil, err
	}
	// The key itself is made at the first login, not now, so that a
	// sandbox template snapshotted before any login holds none to clone;
	// but a state directory that cannot be one would fail every login.
	if err := checkStateDir(scfg.StateDir); err != nil {
		return nil, err
	}
	// A key already there that every login would refuse (one copied in
	// with mode 0644, say) is refused now, where the operator sees it.
	if err := sshd.CheckHostKey(scfg.StateDir); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded ssh server: %w", err)
	}
	addr := ln.Addr().String()
	// direct-tcpip (ssh -L, ssh -W) may reach what a stream may: the
	// default target (this server) and --allow.
	allowed, err := server.AllowFunc(addr, cfg.Allow)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	scfg.AllowTarget = allowed
	srv, err := sshd.New(scfg)
	if err != nil {
		_ = ln.Close()
		if errors.Is(err, sshd.ErrNoAuthorizedKeys) {
			// Lines that are no usable key (a file or the variable with
			// none at all starts the server, waiting for its key).
			var where []string
			if scfg.AuthorizedKeysFile != "" {
				where = append(where, scfg.AuthorizedKeysFile)
			}
			if scfg.AuthorizedKeys != "" {
				where = append(where, envAuthorizedKeys)
			}
			return nil, fmt.Errorf("%s holds no public key the embedded server can use: add one (a line like those in ~/.ssh/id_ed25519.pub; keys with options it does not support are skipped, as the warnings above say)", strings.Join(where, " or "))
		}
		return nil, err
	}
	cfg.Target = addr
	e := &embedded{srv: srv, served: make(chan error, 1)}
	go func() {
		err := srv.Serve(ln)
		if !errors.Is(err, sshd.ErrServerClosed) {
			log.Error("embedded ssh server stopped; ssh to this sandbox fails until sandmux server restarts", "err", err)
		}
		e.served <- err
	}()
	log.Info("embedded ssh server", "addr", addr, "state_dir", scfg.StateDir, "authorized_keys", scfg.AuthorizedKeysFile, "shell", scfg.Shell)
	return e, nil
}

// embeddedConfig is the sshd configuration the flags and environment
// describe (everything but AllowTarget).
func embeddedConfig(c *cli.Context, log *slog.Logger) (sshd.Config, error) {
	cfg := sshd.DefaultConfig()
	home, herr := embeddedHome()
	me, merr := user.Current()
	var err error
	if cfg.MaxStartups, err = parseMaxStartups(c.String("max-startups")); err != nil {
		return cfg, err
	}
	if cfg.StateDir, err = stateDir(c, home, herr); err != nil {
		return cfg, err
	}
	keys, err := tildePath("authorized-keys", c.String("authorized-keys"), func() (string, error) { return home, herr })
	if err != nil {
		return cfg, err
	}
	switch file := keys; {
	case file != "":
		if err := checkKeysFile("--authorized-keys "+file, file); err != nil {
			return cfg, err
		}
		cfg.AuthorizedKeysFile = file
	case herr == nil:
		cfg.AuthorizedKeysFile = filepath.Join(home, ".ssh", "authorized_keys")
		if err := checkKeysFile(cfg.AuthorizedKeysFile+" (the default --authorized-keys)", cfg.AuthorizedKeysFile); err != nil {
			return cfg, err
		}
	}
	cfg.AuthorizedKeys = os.Getenv(envAuthorizedKeys)
	if cfg.AuthorizedKeysFile == "" && cfg.AuthorizedKeys == "" {
		return cfg, errNeedKeys
	}
	cfg.Shell = loginShell(passwdFile, os.Getuid(), os.Getenv("SHELL"))
	// Sessions start from this process's environment, less sandmux's own
	// settings (the token and keys among them).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SANDMUX_") {
			cfg.Env = append(cfg.Env, kv)
		}
	}
	// As sshd sets them for the user a session runs as (this one).
	if merr == nil {
		cfg.Env = append(cfg.Env, "USER="+me.Username, "LOGNAME="+me.Username)
	}
	if herr == nil {
		cfg.Env = append(cfg.Env, "HOME="+home)
	}
	if herr == nil {
		cfg.Dir = home
	}
	// "OpenSSH" first: OpenSSH clients enable their extensions
	// (eow@openssh.com, no-more-sessions) only for a banner matching
	// "OpenSSH*" (compat.c); without eow, "ssh host yes | head -1" never ends.
	cfg.ServerVersion = "SSH-2.0-OpenSSH_9.9-compatible sandmux_" + strings.ReplaceAll(version, " ", "_")
	cfg.Logger = log.With("component", "sshd")
	return cfg, nil
}

// stateDir is --state-dir, else $XDG_STATE_HOME/sandmux, else
// ~/.local/state/sandmux.
func stateDir(c *cli.Context, home string, homeErr error) (string, error) {
	if d := c.String("state-dir"); d != "" {
		return tildePath("state-dir", d, func() (string, error) { return home, homeErr })
	}
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "sandmux"), nil
	}
	if homeErr != nil {
		return "", fmt.Errorf("no home directory for the host key (%w); set --state-dir", homeErr)
	}
	return filepath.Join(home, ".local", "state", "sandmux"), nil
}

// embeddedHome is $HOME, else the user database's home: a server started
// with a bare environment (no HOME, no USER) still gives sessions what
// sshd gives them, and keeps its host key where --print-host-key finds it.
func embeddedHome() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		if h, ok := userHome(); ok {
			return h, nil
		}
	}
	return home, err
}

// hostKeyDir is the directory that holds the host key, as the server
// resolves it.
func hostKeyDir(c *cli.Context) (string, error) {
	home, herr := embeddedHome()
	return stateDir(c, home, herr)
}

// Close stops the embedded server: its connections end, programs still
// running are hung up, and it returns once all of that is done. Only the
// first call waits; later ones (and a nil e) return at once.
func (e *embedded) Close() {
	if e == nil || e.closing.Swap(true) {
		return
	}
	_ = e.srv.Close()
	<-e.served
}

// printHostKey prints the host public key (known_hosts format) and its
// fingerprint, generating the key if there is none yet.
func printHostKey(c *cli.Context) error {
	dir, err := hostKeyDir(c)
	if err != nil {
		return err
	}
	k, err := sshd.LoadHostKey(dir)
	if err != nil {
		return err
	}
	if k.Generated {
		fmt.Fprintf(c.App.ErrWriter, "sandmux: generated a new host key in %s\n", k.Path)
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s\n%s\n", k.PublicKey(), k.Fingerprint())
	return err
}

// checkStateDir fails when dir, or the nearest part of it that exists,
// is not a directory. It creates nothing.
func checkStateDir(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("state directory %s: %s is not a directory; set --state-dir to a directory for the host key", dir, p)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("state directory %s: %w; set --state-dir to a directory for the host key", dir, err)
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// parseMaxStartups reads --max-startups as sshd_config's MaxStartups
// does: START:RATE:FULL, or START alone for a hard limit.
func parseMaxStartups(v string) (sshd.MaxStartups, error) {
	bad := fmt.Errorf("--max-startups %q: want START:RATE:FULL with 0 < START <= FULL and RATE 1-100, e.g. --max-startups 10:30:100 (or START alone)", v)
	parts := strings.Split(v, ":")
	if len(parts) != 1 && len(parts) != 3 {
		return sshd.MaxStartups{}, bad
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			return sshd.MaxStartups{}, bad
		}
		n[i] = x
	}
	m := sshd.MaxStartups{Start: n[0], Rate: n[1], Full: n[2]}
	if len(parts) == 1 {
		m = sshd.MaxStartups{Start: n[0], Rate: 100, Full: n[0]}
	}
	if !m.Valid() {
		return sshd.MaxStartups{}, bad
	}
	return m, nil
}

// checkKeysFile refuses an authorized keys file that cannot be one, in a
// line that names the flag to fix (what is the file named). One not there
// yet is fine: it is read at every login, and a sandbox's key may be
// written after the server starts.
func checkKeysFile(what, file string) error {
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s cannot be read: %w (check the path and its permissions, or set --authorized-keys to a file of public keys)", what, withoutPath(err))
	case fi.IsDir():
		return fmt.Errorf("%s is a directory: set --authorized-keys to a file of public keys, one per line as in ~/.ssh/authorized_keys", what)
	}
	return nil
}
