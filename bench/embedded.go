//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// embeddedPeer names scenario 3's rows for scp through the agent to
// `sandmux server --ssh embedded` instead of to OpenSSH's sshd.
const embeddedPeer = "sandmux agent → embedded"

// openEmbeddedRig starts `sandmux server --ssh embedded` reached over n.
// It accepts the shared sshd's client key, so the same ssh options log in
// to both; only the pinned host key differs.
func (e *env) openEmbeddedRig(n network) (*sshRig, error) {
	s, err := e.getSSHD()
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp(e.work, "embedded")
	if err != nil {
		return nil, err
	}
	pub, err := e.embeddedHostKey(state)
	if err != nil {
		return nil, err
	}
	known := filepath.Join(state, "known_hosts")
	if err := os.WriteFile(known, []byte("* "+pub+"\n"), 0o600); err != nil {
		return nil, err
	}
	srv, err := e.startServer("", "--ssh", "embedded", "--state-dir", state,
		"--authorized-keys", filepath.Join(s.Dir, "authorized_keys"))
	if err != nil {
		return nil, err
	}
	tun := &tunnel{e: e, srv: srv, baseCPU: map[peer]cpuSample{}}
	wsAddr, err := e.via(n, srv.Addr)
	if err == nil {
		tun.agent, err = e.newAgentDir()
	}
	if err != nil {
		tun.close()
		return nil, err
	}
	tun.url = "ws://" + wsAddr
	return &sshRig{e: e, sshd: s, tun: tun, knownHosts: known}, nil
}

// embeddedHostKey makes the embedded server's host key in state, as a
// user would before pinning it, and returns its known_hosts key.
func (e *env) embeddedHostKey(state string) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "server", "--print-host-key", "--state-dir", state)
	cmd.Env = e.childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("sandmux server --print-host-key: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	pub, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(pub, "ssh-") {
		return "", fmt.Errorf("sandmux server --print-host-key printed %q, not a public key", out)
	}
	return pub, nil
}

// scpEmbedded measures cases (upload, download over n) for embeddedPeer.
func scpEmbedded(e *env, t *table, n network, cases []string, f scpFiles) {
	rig, err := e.openEmbeddedRig(n)
	if err == nil {
		defer rig.close()
		err = rig.warmUp([]peer{peerAgent})
	}
	if err != nil {
		for _, c := range cases {
			t.named(c, embeddedPeer).fail(err)
		}
		return
	}
	for rep := range e.s.ScpReps {
		for i, d := range []string{dirUp, dirDown} {
			r := t.named(cases[i], embeddedPeer)
			if r.Error != "" || e.ctx.Err() != nil {
				continue
			}
			dur, err := rig.scpOnce(peerAgent, d, f)
			v := mibps(f.size, dur)
			record(r, v, err)
			e.progress("   %-28s %-20s rep %d/%d: %s", cases[i], embeddedPeer, rep+1, e.s.ScpReps, fmtResult(v, "MiB/s", err))
		}
	}
}
