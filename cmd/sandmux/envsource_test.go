package main

import (
	"strings"
	"testing"
)

// A bad value from the environment is named as the variable that holds
// it: under ssh, `ProxyCommand sandmux proxy %h` with SANDMUX_KEEPALIVE=0s
// exported said "--keepalive 0s: must be positive", a flag found nowhere
// in the user's command or config.
func TestBadEnvValueNamesTheVariable(t *testing.T) {
	for _, c := range []struct {
		env, value string
		args       []string
		want, not  string
	}{
		{"SANDMUX_KEEPALIVE", "0s", []string{"proxy", "abc"}, "SANDMUX_KEEPALIVE=0s: must be at least 1s (a session silent for 1.5× it is dropped, and a real link can pause that long), e.g. SANDMUX_KEEPALIVE=15s", "--keepalive"},
		{"SANDMUX_PERSIST", "-1s", []string{"proxy", "abc"}, "SANDMUX_PERSIST=-1s: must not be negative", "--persist"},
		{"SANDMUX_TARGET", "nope", []string{"server"}, `SANDMUX_TARGET="nope": want HOST:PORT`, "--target"},
		{"SANDMUX_LOG_LEVEL", "verbose", []string{"server"}, `SANDMUX_LOG_LEVEL="verbose": unknown log level`, "--log-level"},
		{"SANDMUX_SSH", "emb", []string{"server", "--listen", "127.0.0.1:0"}, `SANDMUX_SSH="emb": use external or embedded`, "--ssh"},
		// A switch a variable turned on makes no conflict with the
		// command line's flags (it may be set for every command, to
		// try a mode): the proxy goes on, to the refused dial.
		{"SANDMUX_NO_AGENT", "1", []string{"proxy", "--persist", "1m", "--agent-dir", "/nonexistent/sandmux", "abc"}, "connection refused", "--persist"},
		{"SANDMUX_NO_RESUME", "true", []string{"proxy", "--resume-timeout", "1m", "abc"}, "connection refused", "--resume-timeout"},
		{"SANDMUX_NO_AGENT", "1", []string{"proxy", "--fdpass", "abc"}, "--fdpass needs the shared agent (ssh uses the connection only once this process has exited): unset SANDMUX_NO_AGENT, or drop --fdpass and ProxyUseFdpass", "--no-agent"},
		{"SANDMUX_PERSIST", "1m", []string{"proxy", "abc"}, "connection refused", "--persist"},
		{"SANDMUX_TOKEN", "y", []string{"proxy", "--header", "Authorization: x", "abc"}, "--header Authorization and SANDMUX_TOKEN both give the credentials: drop the header, or unset SANDMUX_TOKEN", "--token"},
		// On the command line, the flag is named, also when the
		// variable is set too (the flag wins).
		{"SANDMUX_KEEPALIVE", "15s", []string{"proxy", "--keepalive", "0s", "abc"}, "--keepalive 0s: must be at least 1s", "SANDMUX_KEEPALIVE"},
		{"SANDMUX_LOG_LEVEL", "info", []string{"server", "--log-level=verbose"}, `--log-level "verbose": unknown log level`, "SANDMUX_LOG_LEVEL"},
	} {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			// Should a value pass, the command fails at once on loopback
			// rather than dial out or start an agent.
			t.Setenv("SANDMUX_NO_AGENT", "1")
			t.Setenv("SANDMUX_URL", "ws://127.0.0.1:1")
			t.Setenv(c.env, c.value)
			_, _, err := runApp(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
				t.Fatalf("sandmux %s with %s=%s: %v; want %q, without %q", strings.Join(c.args, " "), c.env, c.value, err, c.want, c.not)
			}
		})
	}
}
