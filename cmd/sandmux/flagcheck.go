package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/server"
	"github.com/urfave/cli/v2"
)

// positive is a DurationFlag Action refusing zero and negative values
// with a line that names the flag and a value that works.
func positive(name, example string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d <= 0 {
			ref := valueRef(c, name)
			return fmt.Errorf("%s: must be positive, e.g. %s", ref(d.String()), ref(example))
		}
		return nil
	}
}

// atLeast is a DurationFlag Action refusing values below floor, the
// least that works over a real link (why says what fails below it),
// with a line that names the flag and a value that works.
func atLeast(name string, floor time.Duration, example, why string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d < floor {
			ref := valueRef(c, name)
			return fmt.Errorf("%s: must be at least %s (%s), e.g. %s", ref(d.String()), durationExample(floor), why, ref(example))
		}
		return nil
	}
}

// atMost is a DurationFlag Action refusing values above ceiling.
func atMost(name string, ceiling time.Duration, example, why string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d > ceiling {
			ref := valueRef(c, name)
			return fmt.Errorf("%s: must be at most %s (%s), e.g. %s", ref(durationExample(d)), durationExample(ceiling), why, ref(example))
		}
		return nil
	}
}

// keepaliveRange is the --keepalive flags' Action, the agent's, the
// proxy's, forward's and the server's. A session that hears nothing for
// 1.5× the interval is dropped: below a second that is within one lost
// packet's retransmission on a real link, and a session churned through
// resumes (1ms: a resume every few milliseconds on loopback; 1ns
// failed before the server accepted the session). Above an hour, every
// NAT and proxy on the way has long dropped an idle connection, and
// from about 850000h the 1.5× overflowed into a negative limit, which
// dropped every session at once.
func keepaliveRange(c *cli.Context, d time.Duration) error {
	if err := atLeast("keepalive", time.Second, "15s", "a session silent for 1.5× it is dropped, and a real link can pause that long")(c, d); err != nil {
		return err
	}
	return atMost("keepalive", time.Hour, "15s", "idle connections are cut by NAT and proxies long before")(c, d)
}

// dialFloor is the least --connect-timeout, --header-timeout and doctor's
// --timeout take: each covers a TCP connection and an HTTP upgrade, round
// trips that a real link does not make in less (1ns failed every dial,
// told as "timed out (check the URL and your network)", and a server with
// --header-timeout 1ns closed every client before its request).
const dialFloor = time.Second

// positiveInt is an IntFlag Action refusing zero and negative values
// with a line that names the flag and its default.
func positiveInt(name string, example int) func(*cli.Context, int) error {
	return func(_ *cli.Context, n int) error {
		if n <= 0 {
			return fmt.Errorf("--%s %d: must be positive, e.g. --%s %d", name, n, name, example)
		}
		return nil
	}
}

// nonNegative is a DurationFlag Action refusing negative values; zero
// means what zeroMeans says.
func nonNegative(name, zeroMeans string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative (0 = %s)", valueRef(c, name)(d.String()), zeroMeans)
		}
		return nil
	}
}

// nonEmpty is a StringFlag Action refusing an empty value given on the
// command line, where it is an unset variable (`--token-file "$F"`) more
// often than a choice, and would otherwise read as no flag at all: for
// the server's --token-file that is no authentication, for --url E2B's
// server, which then gets the token. give says what to give instead. An
// empty environment variable still counts as unset.
func nonEmpty(name, give string) func(*cli.Context, string) error {
	return func(c *cli.Context, v string) error {
		if v == "" && onCommandLine(c, []string{name}) {
			return fmt.Errorf("--%s is empty (an unset variable?): give %s, or leave the flag out", name, give)
		}
		return nil
	}
}

// oneHost checks that c got exactly one argument, the HOST; example is
// the command as a user would type it. Flags after HOST get a line of
// their own: the parser stops at the first argument, so `proxy HOST
// --no-agent` would otherwise read as two HOSTs.
func oneHost(c *cli.Context, example string) error {
	name := c.Command.Name
	args := c.Args().Slice()
	if err := flagsFirst(c); err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one HOST (the sandbox id), got %d, e.g. `%s`", name, len(args), example)
	}
	return nil
}

// noArgs checks that c got no argument; a flag after a stray word would
// otherwise be ignored silently.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 && namesFlag(c.Command, c.Args().First()) {
		a := c.Args().First()
		return fmt.Errorf("%s takes no arguments, got %q: did you mean the flag --%s?", c.Command.Name, a, a)
	}
	if err := flagsFirst(c); err != nil {
		return err
	}
	if c.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (see `sandmux %s --help`)", c.Command.Name, c.Args().First(), c.Command.Name)
	}
	return nil
}

// namesFlag reports whether word is the name of one of cmd's flags
// without its dashes, as in `sandmux agent stop` for --stop.
func namesFlag(cmd *cli.Command, word string) bool {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), word) && len(word) > 1 {
			return true
		}
	}
	return false
}

// flagsFirst refuses a flag that follows an argument.
func flagsFirst(c *cli.Context) error {
	args := c.Args().Slice()
	for i, a := range args {
		if i > 0 && len(a) > 1 && a[0] == '-' {
			return fmt.Errorf("%s: flag %s comes after %q, and flags must come first: `sandmux %s [flags] %s`", c.Command.Name, a, args[0], c.Command.Name, args[0])
		}
	}
	return nil
}

// listen listens on addr, the value of --flag, and words its failure as
// what to change; example is a working value.
func listen(flag, addr, example string) (net.Listener, error) {
	if addr == "" {
		// net.Listen would take "" as every interface, port chosen.
		return nil, fmt.Errorf("--%s is empty; give HOST:PORT, e.g. --%s %s", flag, flag, example)
	}
	if strings.HasSuffix(addr, ":") {
		// Or "HOST:" as HOST, port chosen: `--listen 0.0.0.0:$PORT`
		// with PORT unset listened where no client would look.
		return nil, fmt.Errorf("--%s %s has no port (an unset variable?); give HOST:PORT, e.g. --%s %s", flag, addr, flag, example)
	}
	ex := func(a string) string { return "--" + flag + " " + a }
	if fault := listenFault(addr, example, ex); fault != "" {
		return nil, fmt.Errorf("--%s %s: %s", flag, addr, fault)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(flag, addr, example, err)
	}
	return ln, nil
}

// listenError words a failure to listen on addr. Only a malformed
// address wants another HOST:PORT spelling: a port below 1024 for a user
// who may not bind it (E2B runs start commands as a plain user) or an
// address the machine does not have is spelt right but must change.
func listenError(flag, addr, example string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errnoIs(err, syscall.EADDRINUSE):
		return fmt.Errorf("--%s %s is in use: is another server running there? stop it, or pick another port with --%s", flag, addr, flag)
	case runtime.GOOS == "windows" && errnoIs(err, syscall.EACCES):
		// No port is privileged there: this is one that Windows keeps
		// for itself (Hyper-V, WSL and Docker reserve ranges).
		return fmt.Errorf("--%s %s: Windows reserves this port (`netsh interface ipv4 show excludedportrange protocol=tcp` lists the reserved ranges); pick another, e.g. --%s %s", flag, addr, flag, example)
	case errnoIs(err, syscall.EACCES):
		return fmt.Errorf("--%s %s: permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE); pick a port from 1024 up, e.g. --%s %s", flag, addr, flag, example)
	case errnoIs(err, syscall.EADDRNOTAVAIL), errnoIs(err, syscall.EINVAL):
		// EINVAL: a link-local address whose zone names no interface.
		host, _, _ := net.SplitHostPort(addr)
		return fmt.Errorf("--%s %s: %s is not an address of this machine; give one of its own, or 0.0.0.0 for every interface, e.g. --%s %s", flag, addr, host, flag, example)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("--%s %s: %s does not resolve here; give an address of this machine, or 0.0.0.0 for every interface, e.g. --%s %s", flag, addr, dnsErr.Name, flag, example)
	default:
		return fmt.Errorf("--%s %s: %w; give HOST:PORT, e.g. --%s %s", flag, addr, err, flag, example)
	}
}

// hostPort is a StringFlag Action for a target, as the server reads one
// (server.CheckTarget). The server checks it again against its
// allowlist; this only catches what no allowlist could hold before a
// session is dialled for it.
func hostPort(name string) func(*cli.Context, string) error {
	return func(c *cli.Context, v string) error {
		if err := server.CheckTarget(v); err != nil {
			ref := valueRef(c, name)
			var he *server.TargetHostError
			if errors.As(err, &he) {
				return fmt.Errorf("%s: %s, e.g. %s", ref(strconv.Quote(v)), he.Reason, ref("127.0.0.1:5432"))
			}
			return fmt.Errorf("%s: %s, e.g. %s", ref(strconv.Quote(v)), targetFault(v), ref("127.0.0.1:5432"))
		}
		return nil
	}
}

// targetFault says what is wrong with v, a target CheckTarget refused
// for its form: "want HOST:PORT" alone misled for a HOST:PORT whose port
// is out of range, or an IPv6 address without brackets.
func targetFault(v string) string {
	host, port, err := net.SplitHostPort(v)
	switch {
	case err != nil && strings.Contains(v, "://"):
		return "want HOST:PORT, not a URL"
	case err != nil && strings.Count(v, ":") > 1 && !strings.ContainsAny(v, "[/"):
		return "want HOST:PORT, an IPv6 address in brackets as in [::1]:22"
	case err != nil && v != "" && isPort(v):
		return "want HOST:PORT, not a port alone"
	case err != nil && v != "" && (!strings.Contains(v, ":") || strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]")):
		return "want HOST:PORT; the port is missing"
	case err != nil:
		return "want HOST:PORT"
	case host == "":
		return "the host is empty"
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "the port must be a number from 1 to 65535"
	}
	return "the host name has an empty label (two dots in a row, or a dot first)"
}

// hostPorts is hostPort for a repeatable flag.
func hostPorts(name string) func(*cli.Context, []string) error {
	one := hostPort(name)
	return func(c *cli.Context, vs []string) error {
		for _, v := range vs {
			if err := one(c, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// nearCommand returns the command whose name word is a typo of (at most
// two edits away, or a prefix of it), or "".
func nearCommand(cmds []*cli.Command, word string) string {
	for _, c := range cmds {
		if len(word) >= 3 && strings.HasPrefix(c.Name, word) || editDistance(c.Name, word) <= 2 {
			return c.Name
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
