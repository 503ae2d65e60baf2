package main

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

// checkFdpass refuses --fdpass where it cannot work, and a proxy that ssh
// runs with ProxyUseFdpass but without --fdpass, which would write the
// stream's bytes where ssh waits for a descriptor ("mm_receive_fd: no
// message header", then sandmux's "connection reset by peer").
func checkFdpass(c *cli.Context) error {
	if !c.Bool("fdpass") {
		if fdpassLikely() {
			return errors.New("ssh passed a socket to be given the connection over (ProxyUseFdpass yes): add --fdpass to the ProxyCommand (`sandmux proxy --fdpass %h`), or set ProxyUseFdpass no")
		}
		return nil
	}
	if c.Bool("no-agent") || c.Bool("raw") || !agentSupported {
		// ssh uses the connection only once its ProxyCommand has
		// exited, and without the agent nothing would be left to carry it.
		fix := "drop --no-agent and --raw, or --fdpass and ProxyUseFdpass"
		if env := envSource(c, "no-agent"); env != "" && c.Bool("no-agent") && !c.Bool("raw") {
			// Not on the command line, where there is nothing to drop.
			fix = "unset " + env + ", or drop --fdpass and ProxyUseFdpass"
		}
		return errors.New("--fdpass needs the shared agent (ssh uses the connection only once this process has exited): " + fix)
	}
	if !agent.FdpassSocket(os.Stdout) {
		return errors.New("--fdpass: stdout is not the socket ssh gives with ProxyUseFdpass: add ProxyUseFdpass yes beside the ProxyCommand (-o ProxyUseFdpass=yes), or drop --fdpass")
	}
	return nil
}

// fdpassLikely reports whether this process looks like ssh's ProxyCommand
// under ProxyUseFdpass: stdin and stdout one Unix stream socket, and ssh
// the parent (it runs its ProxyCommand with exec). Without ProxyUseFdpass
// ssh gives two pipes; socat's EXEC, which gives one socket too, is not
// ssh.
func fdpassLikely() bool {
	return agent.FdpassSocket(os.Stdout) && sameFile(os.Stdin, os.Stdout) && parentIsSSH()
}
