package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/sshd"
)

func TestParseForward(t *testing.T) {
	tests := []struct {
		in           string
		listen, dest string
		err          string
	}{
		{in: "5432:db:5432", listen: "127.0.0.1:5432", dest: "db:5432"},
		{in: "0:127.0.0.1:7", listen: "127.0.0.1:0", dest: "127.0.0.1:7"},
		{in: "0.0.0.0:8080:127.0.0.1:80", listen: "0.0.0.0:8080", dest: "127.0.0.1:80"},
		{in: "*:8080:web:80", listen: ":8080", dest: "web:80"},
		{in: ":8080:web:80", listen: ":8080", dest: "web:80"},
		{in: "[::1]:2222:[fd00::5]:22", listen: "[::1]:2222", dest: "[fd00::5]:22"},
		{in: "localhost:9000:127.0.0.1:9000", listen: "localhost:9000", dest: "127.0.0.1:9000"},
		{in: "5432:db", err: `-L "5432:db": wrong number of fields; want [BIND:]LPORT:TARGETHOST:TARGETPORT, e.g. -L 5432:127.0.0.1:5432`},
		{in: "a:b:c:d:e", err: "wrong number of fields"},
		{in: "x:db:5432", err: `local port "x" is not a number from 0 to 65535`},
		{in: "70000:db:5432", err: `local port "70000"`},
		{in: "5432:db:0", err: `target port "0" is not a number from 1 to 65535`},
		{in: "5432::5432", err: "no target host"},
		{in: "[::1:5432:db:5432", err: "unbalanced brackets"},
		{in: "2222:10.0.0.0/8:22", err: `-L "2222:10.0.0.0/8:22": target address ranges are not supported; name each HOST:PORT by its address, e.g. -L 5432:127.0.0.1:5432`},
		{in: "2222:*:22", err: "target patterns are not supported"},
		{in: "[fe80::1%eth0]:2222:[fe80::2%eth0]:22", listen: "[fe80::1%eth0]:2222", dest: "[fe80::2%eth0]:22"},
	}
	for _, tt := range tests {
		got, err := parseForward(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseForward(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.Listen != tt.listen || got.Target != tt.dest {
			t.Errorf("parseForward(%q) = %+v, %v; want %s -> %s", tt.in, got, err, tt.listen, tt.dest)
		}
	}
}

func TestForwardUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"forward", "abc"}, "forward needs at least one -L [BIND:]LPORT:TARGETHOST:TARGETPORT"},
		{[]string{"forward", "-L", "1:h:2"}, "forward needs exactly one HOST (the sandbox id), got 0"},
		{[]string{"forward", "-L", "1:h:2", "abc", "--no-agent"}, "forward: flag --no-agent comes after \"abc\", and flags must come first"},
		{[]string{"proxy", "abc", "--no-agent"}, "proxy: flag --no-agent comes after \"abc\""},
		{[]string{"proxy", "a", "b"}, "proxy needs exactly one HOST (the sandbox id), got 2"},
		{[]string{"proxy", "--keepalive", "0", "abc"}, "--keepalive 0s: must be at least 1s (a session silent for 1.5× it is dropped, and a real link can pause that long), e.g. --keepalive 15s"},
		{[]string{"agent", "extra", "--agent-dir", "/nonexistent"}, "agent: flag --agent-dir comes after \"extra\""},
		{[]string{"status", "extra"}, "status takes no arguments, got \"extra\""},
		{[]string{"status", "--agent-dir", file}, "agent directory " + file + " is not a directory: give the directory the agent runs in"},
		{[]string{"agent", "--stop", "--agent-dir", file}, "agent directory " + file + " is not a directory: give the directory the agent runs in"},
		{[]string{"agent", "stop"}, "agent takes no arguments, got \"stop\": did you mean the flag --stop?"},
		{[]string{"agent", "stop", "--agent-dir", "/nonexistent"}, "did you mean the flag --stop?"},
		{[]string{"status", "json"}, "did you mean the flag --json?"},
		{[]string{"agent", "--stop", "--foreground"}, "--stop and --foreground: give one"},
		{[]string{"proxy", "--target", "bad", "abc"}, "--target \"bad\": want HOST:PORT; the port is missing, e.g. --target 127.0.0.1:5432"},
		{[]string{"agent", "--log-level", "loud"}, "--log-level \"loud\": unknown log level: use debug, info, warn or error"},
		{[]string{"nosuchcmd"}, "unknown command \"nosuchcmd\" (the commands are in `sandmux --help`)"},
		{[]string{"server", "--ssh", "embedded", "--max-startups", "20:30:10"}, `--max-startups "20:30:10": want START:RATE:FULL with 0 < START <= FULL and RATE 1-100, e.g. --max-startups 10:30:100 (or START alone)`},
		{[]string{"server", "--ssh", "embedded", "--max-startups", "a"}, `--max-startups "a": want START:RATE:FULL`},
		{[]string{"server", "--max-startups", "100"}, "--max-startups is the embedded SSH server's (--ssh embedded)"},
		{[]string{"prox"}, "unknown command \"prox\": did you mean proxy? (the commands are in `sandmux --help`)"},
		{[]string{"stauts"}, "did you mean status?"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus (see `sandmux --help`)"},
		{[]string{"proxy", "--raw", "--target", "127.0.0.1:5432", "abc"}, "--raw cannot choose a --target"},
		{[]string{"server", "--listen", ""}, "--listen is empty; give HOST:PORT, e.g. --listen 0.0.0.0:8081"},
		{[]string{"server", "--allow", "127.0.0.1:5432", "--allow", "nope"}, "--allow \"nope\": want HOST:PORT; the port is missing, e.g. --allow 127.0.0.1:5432"},
		// A range or a pattern would start a server that refuses every
		// stream to what the operator meant.
		{[]string{"server", "--allow", "10.0.0.0/8:22"}, `--allow "10.0.0.0/8:22": address ranges are not supported; name each HOST:PORT by its address, e.g. --allow 127.0.0.1:5432`},
		{[]string{"server", "--target", "*:22"}, `--target "*:22": patterns are not supported; name each HOST:PORT, e.g. --target 127.0.0.1:5432`},
		{[]string{"server", "--listen", "127.0.0.1"}, "--listen 127.0.0.1: no port; give HOST:PORT, e.g. --listen 127.0.0.1:8081"},
		{[]string{"server", "--shutdown-timeout", "-1s"}, "--shutdown-timeout -1s: must be positive"},
		{[]string{"forward", "-L", "nope", "abc"}, `-L "nope": wrong number of fields`},
		{[]string{"forward", "-L", "15003:a:1", "-L", "15003:b:2", "abc"}, `-L "15003:a:1" and -L "15003:b:2" both listen on 127.0.0.1:15003; give each its own local port`},
		{[]string{"proxy", "--keepalive", "5", "abc"}, `--keepalive "5" is not a duration: give a number with a unit (ms, s, m, h), e.g. --keepalive 15s`},
		{[]string{"agent", "--persist=1"}, `--persist "1" is not a duration: give a number with a unit (ms, s, m, h), e.g. --persist 10m`},
		{[]string{"server", "--idle-timeout", "4"}, `e.g. --idle-timeout 30s`},
		// The parser stops at the unknown flag, so that is what is named.
		{[]string{"proxy", "--bogus", "--keepalive", "5", "abc"}, "flag provided but not defined: -bogus"},
		{[]string{"proxy", "-keepalive=5", "abc"}, `--keepalive "5" is not a duration`},
		{[]string{"server", "--max-sessions", "x", "--idle-timeout", "4"}, `--max-sessions "x" is not a whole number, e.g. --max-sessions 100`},
		{[]string{"proxy", "--no-agent=maybe", "--keepalive", "5", "abc"}, "--no-agent=maybe: --no-agent is a switch: give it alone to turn it on, or --no-agent=false"},
		{[]string{"proxy", "---keepalive", "5", "abc"}, "bad flag syntax: ---keepalive"},
		{[]string{"proxy", "--keepalive", "5", "--keepalive", "10s", "abc"}, `--keepalive "5" is not a duration`},
		{[]string{"forward", "help"}, "forward needs at least one -L"},
		// An empty value given on the command line is an unset
		// variable, not the flag left out: the server ran without
		// authentication, the proxy sent its token to E2B.
		// (The other flags make a command that took the value fail at
		// once, not run or dial.)
		{[]string{"server", "--listen", "", "--token-file", ""}, "--token-file is empty (an unset variable?): give the file that holds the token, or leave the flag out"},
		{[]string{"server", "--listen", "", "--ssh", "embedded", "--authorized-keys="}, "--authorized-keys is empty"},
		{[]string{"proxy", "--url", "", "--raw", "--target", "127.0.0.1:1", "abc"}, "--url is empty (an unset variable?): give the server URL, e.g. --url wss://8081-{host}.e2b.app, or leave the flag out"},
		{[]string{"proxy", "--no-agent", "--url", "ws://127.0.0.1:1", "--token-file=", "abc"}, "--token-file is empty"},
		{[]string{"doctor", "--url", "ws://127.0.0.1:1", "--ca", "", "abc"}, "--ca is empty (an unset variable?): give the PEM file of the CA"},
		{[]string{"ssh-config", "--url", ""}, "--url is empty"},
		// Or the server listened on a port chosen at random.
		{[]string{"server", "--listen", "127.0.0.1:", "--metrics-listen", "x"}, "--listen 127.0.0.1: has no port (an unset variable?); give HOST:PORT, e.g. --listen 0.0.0.0:8081"},
		{[]string{"server", "--max-sessions", "0"}, "--max-sessions 0: must be positive, e.g. --max-sessions 100"},
		{[]string{"server", "--max-total-streams", "-1"}, "--max-total-streams -1: must be positive, e.g. --max-total-streams 4096"},
		{[]string{"server", "--max-streams", "1e3"}, `--max-streams "1e3" is not a whole number, e.g. --max-streams 256`},
		{[]string{"server", "--max-handshakes", "99999999999999999999"}, `--max-handshakes "99999999999999999999" is too large, e.g. --max-handshakes 64`},
		{[]string{"status", "--json=2"}, "--json=2: --json is a switch"},
		// HOST:PORT, but not one that works: "want HOST:PORT" misled.
		{[]string{"proxy", "--target", "127.0.0.1:0", "abc"}, `--target "127.0.0.1:0": the port must be a number from 1 to 65535, e.g. --target 127.0.0.1:5432`},
		{[]string{"server", "--target", "127.0.0.1:70000"}, "the port must be a number from 1 to 65535"},
		{[]string{"server", "--allow", "::1:22"}, `--allow "::1:22": want HOST:PORT, an IPv6 address in brackets as in [::1]:22, e.g. --allow 127.0.0.1:5432`},
		{[]string{"doctor", "--probe-target", "a..b:7", "abc"}, "the host name has an empty label"},
		{[]string{"forward", "-L", "::1:15000:127.0.0.1:22", "abc"}, "wrong number of fields (an IPv6 address goes in brackets, as in [::1]:5432:[::1]:5432)"},
		// Spelt right but over what a duration holds: it was told to
		// give a number with a unit, which it had.
		{[]string{"proxy", "--keepalive", "99999999999h", "abc"}, `--keepalive "99999999999h" is too long: a duration is at most 2562047h, e.g. --keepalive 15s`},
		{[]string{"proxy", "--keepalive", ".h", "abc"}, `--keepalive ".h" is not a duration`},
		{[]string{"server", "--listen", "::1:8081"}, "give HOST:PORT, an IPv6 address in brackets, e.g. --listen [::1]:8081"},
		// Ignored, sshd refused the key the operator thought given.
		{[]string{"server", "--listen", "", "--authorized-keys", file}, "--authorized-keys is the embedded SSH server's: add --ssh embedded, or drop --authorized-keys"},
		{[]string{"server", "--listen", "", "--state-dir", file}, "--state-dir is the embedded SSH server's"},
		// The forward ran, and each connection failed on a line of its
		// own. (192.0.2.1, an address no machine has, fails the forward
		// that takes the directory, after it set up its agent.)
		{[]string{"forward", "--url", "ws://127.0.0.1:1", "-L", "0:127.0.0.1:1", "-L", "192.0.2.1:0:127.0.0.1:1", "--agent-dir", file, "abc"}, "create agent directory: mkdir " + file + ": not a directory"},
		// The rest of the empty values given on the command line: each
		// read as the flag left out (the default directory, level,
		// token, no metrics), unlike the ones above.
		{[]string{"agent", "--agent-dir=", "--stop", "--foreground"}, "--agent-dir is empty (an unset variable?): give the directory the agent runs in, or leave the flag out"},
		{[]string{"status", "--agent-dir", ""}, "--agent-dir is empty"},
		{[]string{"agent", "--log-level", "", "--stop", "--agent-dir", file}, "--log-level is empty (an unset variable?): give debug, info, warn or error, or leave the flag out"},
		{[]string{"server", "--log-level=", "--listen", ""}, "--log-level is empty"},
		{[]string{"server", "--listen", "", "--ssh", "embedded", "--state-dir", ""}, "--state-dir is empty (an unset variable?): give the directory for the host key, or leave the flag out"},
		{[]string{"proxy", "--token", "", "--raw", "--target", "127.0.0.1:1", "abc"}, "--token is empty (an unset variable?): give the token the server was started with, or leave the flag out"},
		{[]string{"forward", "--token=", "abc"}, "--token is empty"},
		{[]string{"proxy", "--strip-suffix", "", "--raw", "--target", "127.0.0.1:1", "abc"}, "--strip-suffix is empty (an unset variable?): give the suffix to remove, e.g. --strip-suffix .e2b, or leave the flag out"},
		{[]string{"server", "--listen", "", "--metrics-listen", ""}, "--metrics-listen is empty (an unset variable?): give HOST:PORT, e.g. --metrics-listen 127.0.0.1:9090, or leave the flag out"},
		// Addresses to listen on, in sandmux's words rather than Go's
		// ("address 8081: missing port in address", "lookup tcp/0x50:
		// unknown port"), each failing before a name is looked up.
		{[]string{"server", "--listen", "8081"}, "--listen 8081: a port alone; give HOST:PORT, e.g. --listen 0.0.0.0:8081 (every interface) or --listen 127.0.0.1:8081 (this machine only)"},
		{[]string{"server", "--listen", "host"}, "--listen host: no port; give HOST:PORT, e.g. --listen host:8081"},
		{[]string{"server", "--listen", "[::1]"}, "--listen [::1]: no port; give HOST:PORT, e.g. --listen [::1]:8081"},
		{[]string{"server", "--listen", "[::1"}, "--listen [::1: unbalanced brackets; an IPv6 address goes in brackets, e.g. --listen [::1]:8081"},
		{[]string{"server", "--listen", ":http", "--metrics-listen", "x"}, "--listen :http: the port is a name; give its number, e.g. --listen :80"},
		{[]string{"server", "--listen", "127.0.0.1:99999"}, "--listen 127.0.0.1:99999: the port must be a number from 0 to 65535, e.g. --listen 127.0.0.1:8081"},
		{[]string{"server", "--listen", "127.0.0.1:0x50"}, "--listen 127.0.0.1:0x50: the port must be a number from 0 to 65535"},
		{[]string{"server", "--listen", "nosuchhost.invalid:8081"}, "--listen nosuchhost.invalid:8081: nosuchhost.invalid does not resolve (no .invalid name does); give an address of this machine, e.g. --listen 0.0.0.0:8081"},
		{[]string{"server", "--listen", "a..b:8081"}, `--listen a..b:8081: "a..b" is neither an IP address nor a host name, e.g. --listen 0.0.0.0:8081`},
		{[]string{"server", "--listen", "ws://127.0.0.1:8081"}, "--listen ws://127.0.0.1:8081: give HOST:PORT, not a URL, e.g. --listen 0.0.0.0:8081"},
		{[]string{"server", "--listen", "*:8081", "--metrics-listen", "x"}, "--listen *:8081: give 0.0.0.0 (or no HOST) for every interface, e.g. --listen 0.0.0.0:8081"},
		{[]string{"server", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:99999"}, "--metrics-listen 127.0.0.1:99999: the port must be a number from 0 to 65535, e.g. --metrics-listen 127.0.0.1:9090"},
		{[]string{"server", "--listen", "127.0.0.1:0", "--metrics-listen", "9090"}, "--metrics-listen 9090: a port alone; give HOST:PORT, e.g. --metrics-listen 127.0.0.1:9090"},
		{[]string{"forward", "-L", "nosuchhost.invalid:0:127.0.0.1:1", "abc"}, `-L "nosuchhost.invalid:0:127.0.0.1:1": BIND nosuchhost.invalid does not resolve (no .invalid name does); leave BIND out for 127.0.0.1, or give * for every interface`},
		{[]string{"forward", "-L", "a!b:0:127.0.0.1:1", "abc"}, `-L "a!b:0:127.0.0.1:1": BIND "a!b" is neither an IP address nor a host name; leave BIND out for 127.0.0.1`},
		{[]string{"server", "--target", "8081"}, `--target "8081": want HOST:PORT, not a port alone, e.g. --target 127.0.0.1:5432`},
		{[]string{"server", "--allow", "[::1]"}, `--allow "[::1]": want HOST:PORT; the port is missing, e.g. --allow 127.0.0.1:5432`},
		{[]string{"proxy", "--target", "ssh://127.0.0.1:22", "abc"}, `--target "ssh://127.0.0.1:22": want HOST:PORT, not a URL, e.g. --target 127.0.0.1:5432`},
		// Below what works over a real link: 1ns failed every dial as
		// "timed out (check the URL and your network)", a server with
		// --header-timeout 1ns closed every client unread, and a 1ms
		// keepalive resumed its session every few milliseconds.
		{[]string{"proxy", "--keepalive", "1ns", "--raw", "--target", "127.0.0.1:1", "abc"}, "--keepalive 1ns: must be at least 1s (a session silent for 1.5× it is dropped, and a real link can pause that long), e.g. --keepalive 15s"},
		{[]string{"agent", "--keepalive", "999ms", "--stop", "--foreground"}, "--keepalive 999ms: must be at least 1s"},
		{[]string{"forward", "--keepalive", "10ms", "abc"}, "--keepalive 10ms: must be at least 1s"},
		{[]string{"server", "--keepalive", "100ms", "--listen", ""}, "--keepalive 100ms: must be at least 1s"},
		// From about 850000h, 1.5× it overflowed and dropped every session.
		{[]string{"server", "--keepalive", "1000000h", "--listen", ""}, "--keepalive 1000000h: must be at most 1h (idle connections are cut by NAT and proxies long before), e.g. --keepalive 15s"},
		{[]string{"server", "--header-timeout", "1ns", "--listen", ""}, "--header-timeout 1ns: must be at least 1s (an upgrade or a stream header over a real link takes round trips), e.g. --header-timeout 10s"},
		{[]string{"proxy", "--connect-timeout", "500ms", "--raw", "--target", "127.0.0.1:1", "abc"}, "--connect-timeout 500ms: must be at least 1s (a dial over a real link takes several round trips), e.g. --connect-timeout 30s"},
		{[]string{"forward", "--connect-timeout", "1ns", "abc"}, "--connect-timeout 1ns: must be at least 1s"},
		{[]string{"doctor", "--timeout", "1ns", "--url", "ws://127.0.0.1:1", "abc"}, "--timeout 1ns: must be at least 1s (a dial over a real link takes several round trips), e.g. --timeout 10s"},
		// Flags that another flag makes moot were ignored without a
		// word; -L BINDs that overlap failed as "in use (another
		// forward, or a program listening there?)", the other one
		// being this command's.
		// --no-agent takes the agent's flags and goes on (the agent's
		// errors say "or use --no-agent"), to the refused dial here.
		{[]string{"proxy", "--no-agent", "--persist", "1m", "--agent-dir", file, "--url", "ws://127.0.0.1:1", "abc"}, "connection refused"},
		{[]string{"proxy", "--raw", "--agent-dir", file, "--url", "ws://127.0.0.1:1", "abc"}, "--agent-dir is the shared agent's, and --raw runs without one: drop --agent-dir or --raw"},
		{[]string{"proxy", "--raw", "--keepalive", "5s", "--url", "ws://127.0.0.1:1", "abc"}, "--keepalive is a sandmux session's, and --raw opens a plain WebSocket, which has none: drop --keepalive or --raw"},
		{[]string{"proxy", "--no-agent", "--no-resume", "--resume-timeout", "1m", "--url", "ws://127.0.0.1:1", "abc"}, "--resume-timeout is how long a lost session resumes, and --no-resume turns resuming off: drop --resume-timeout or --no-resume"},
		{[]string{"agent", "--no-resume", "--resume-timeout", "1m", "--foreground", "--agent-dir", file}, "--resume-timeout is how long a lost session resumes"},
		{[]string{"proxy", "--no-agent", "--ca", file, "--insecure", "--url", "ws://127.0.0.1:1", "abc"}, "--insecure skips the certificate check that --ca is for: drop --insecure to trust only the CA, or --ca"},
		{[]string{"doctor", "--ca", file, "--insecure", "--url", "ws://127.0.0.1:1", "abc"}, "--insecure skips the certificate check"},
		{[]string{"forward", "--no-agent", "-L", "15602:127.0.0.1:1", "-L", "0.0.0.0:15602:127.0.0.1:2", "--url", "ws://127.0.0.1:1", "abc"}, `-L "15602:127.0.0.1:1" and -L "0.0.0.0:15602:127.0.0.1:2" both listen on port 15602 (127.0.0.1 and 0.0.0.0 overlap); give each its own local port`},
		{[]string{"forward", "--no-agent", "-L", "localhost:15602:127.0.0.1:1", "-L", "[::1]:15602:127.0.0.1:2", "--url", "ws://127.0.0.1:1", "abc"}, "both listen on port 15602 (localhost and ::1 overlap)"},
		{[]string{"forward", "--no-agent", "-L", "15602:127.0.0.1:1", "-L", "*:15602:127.0.0.1:2", "--url", "ws://127.0.0.1:1", "abc"}, "both listen on port 15602 (127.0.0.1 and * overlap)"},
		{[]string{"doctor", "--probe", "0", "--probe-target", "127.0.0.1:7", "--url", "ws://127.0.0.1:1", "abc"}, "--probe-target is measured during the --probe, which --probe 0 skips: give --probe 5s, or drop --probe-target"},
		{[]string{"agent", "--stop", "--persist", "1m", "--agent-dir", file}, "--stop stops the running agent, which has its own settings: drop --persist (give it to the next `sandmux agent` or proxy)"},
		// The library's line named --token for a token from anywhere,
		// behind "invalid client config:"; a header given twice was sent
		// twice.
		{[]string{"proxy", "--header", "Authorization: Bearer x", "--token", "y", "--no-agent", "--url", "ws://127.0.0.1:1", "abc"}, "--header Authorization and --token both give the credentials: drop one of them"},
		{[]string{"proxy", "--header", "Authorization: Bearer x", "--token-file", tokenFile, "--no-agent", "--url", "ws://127.0.0.1:1", "abc"}, "--header Authorization and --token-file both give the credentials: drop one of them"},
		{[]string{"proxy", "--header", "X-A: 1", "--header", "x-a: 2", "--no-agent", "--url", "ws://127.0.0.1:1", "abc"}, "--header X-A is given twice: give each header once"},
	}
	for _, tt := range tests {
		out, _, err := runApp(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("sandmux %s: error %v, want %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("sandmux %s: error is not one line: %q", strings.Join(tt.args, " "), err)
		}
		if out != "" {
			// Under ssh, proxy's stdout is the stream.
			t.Errorf("sandmux %s: printed %q on stdout", strings.Join(tt.args, " "), out)
		}
	}
}

// A bad environment value is named with what to set it to, not with
// strconv's or time's wording.
func TestEnvValueErrors(t *testing.T) {
	t.Setenv("SANDMUX_NO_AGENT", "maybe")
	_, _, err := runApp(t, "proxy", "abc")
	if want := `SANDMUX_NO_AGENT="maybe" is not a boolean: set it to true or false (or 1 or 0), or unset it`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SANDMUX_NO_AGENT=maybe: error %v, want %q", err, want)
	}
	// Every environment value is read before the arguments: a bad one
	// is named even when a flag gives the same setting.
	t.Setenv("SANDMUX_NO_AGENT", "")
	t.Setenv("SANDMUX_KEEPALIVE", "5")
	_, _, err = runApp(t, "proxy", "--keepalive", "10s", "abc")
	if want := `SANDMUX_KEEPALIVE="5" is not a duration: give a number with a unit (ms, s, m, h), e.g. SANDMUX_KEEPALIVE=15s`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SANDMUX_KEEPALIVE=5: error %v, want %q", err, want)
	}
}

// An empty variable is an unset one: urfave/cli took it as the value "",
// which the server then refused (SANDMUX_SSH= said `--ssh "": use
// external or embedded`, SANDMUX_TARGET= that the target was empty, and
// with --ssh embedded that it named an external sshd).
func TestEmptyEnvIsUnset(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		// Each command fails on a later fault, not on the variable.
		{[]string{"SANDMUX_TARGET"}, []string{"server", "--listen", ""}, "--listen is empty"},
		{[]string{"SANDMUX_SSH"}, []string{"server", "--listen", "", "--authorized-keys", file}, "--authorized-keys is the embedded SSH server's"},
		{[]string{"SANDMUX_TARGET", "SANDMUX_STATE_DIR", "SANDMUX_LOG_LEVEL", "SANDMUX_METRICS_LISTEN"}, []string{"server", "--ssh", "embedded", "--listen", "", "--state-dir", file}, "is not a directory"},
		{[]string{"SANDMUX_TOKEN", "SANDMUX_URL", "SANDMUX_STRIP_SUFFIX", "SANDMUX_AGENT_DIR"}, []string{"proxy", "--raw", "--target", "127.0.0.1:1", "abc"}, "--raw cannot choose a --target"},
		// The server's token is the exception: SANDMUX_TOKEN=$T with T
		// unset would run it without authentication.
		{[]string{"SANDMUX_TOKEN"}, []string{"server", "--listen", ""}, "--token (or SANDMUX_TOKEN) is empty"},
	} {
		t.Run(strings.Join(tt.env, ","), func(t *testing.T) {
			for _, e := range tt.env {
				t.Setenv(e, "")
			}
			out, _, err := runApp(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Errorf("%s= sandmux %s: error %v, stdout %q; want %q", strings.Join(tt.env, "= "), strings.Join(tt.args, " "), err, out, tt.want)
			}
		})
	}
}

// A proxy with --no-resume starts its agent without --resume-timeout,
// which the agent refuses beside --no-resume: every proxy with
// SANDMUX_NO_RESUME=1 failed as "the sandmux agent could not start".
func TestSpawnArgs(t *testing.T) {
	args := spawnArgs("/d", time.Minute, 15*time.Second, 10*time.Minute, true, "debug")
	if want := "agent --spawn --agent-dir /d --persist 1m0s --keepalive 15s --no-resume --log-level debug"; strings.Join(args, " ") != want {
		t.Errorf("spawnArgs(no-resume) = %q, want %q", args, want)
	}
	args = spawnArgs("/d", time.Minute, 15*time.Second, 10*time.Minute, false, "")
	if want := "agent --spawn --agent-dir /d --persist 1m0s --keepalive 15s --resume-timeout 10m0s"; strings.Join(args, " ") != want {
		t.Errorf("spawnArgs = %q, want %q", args, want)
	}
}

func TestBackgroundArgs(t *testing.T) {
	got := backgroundArgs([]string{"forward", "--background", "-L", "1:h:2", "--url", "ws://x", "abc"})
	want := []string{"forward", "--background-child", "-L", "1:h:2", "--url", "ws://x", "abc"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("backgroundArgs = %q, want %q", got, want)
	}
	got = backgroundArgs([]string{"forward", "--background=true", "-L", "1:h:2", "abc"})
	if strings.Join(got, " ") != "forward --background-child -L 1:h:2 abc" {
		t.Fatalf("backgroundArgs(--background=true) = %q", got)
	}
}

func TestSSHConfigBlock(t *testing.T) {
	got, err := sshConfigBlock("/opt/sand mux/sandmux", "*.e2b", "user", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Host *.e2b\n",
		"    User user\n",
		// The URL is written out even when it is the default: a
		// SANDMUX_URL set for another provider must not redirect it.
		"    ProxyCommand '/opt/sand mux/sandmux' proxy --strip-suffix .e2b --url 'wss://8081-{host}.e2b.app' %h\n",
		"# `ssh <sandbox-id>.e2b` dials wss://8081-<sandbox-id>.e2b.app.\n",
		"    ServerAliveInterval 30\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("block lacks %q:\n%s", line, got)
		}
	}
	// ssh's own keepalive must not give up on a session that sandmux is
	// still resuming (a paused sandbox, a network outage): with 30 s × 3
	// an ssh died after 90 s of a pause the tunnel would have carried it
	// through.
	var interval, count int
	for _, l := range strings.Split(got, "\n") {
		_, _ = fmt.Sscanf(l, "    ServerAliveInterval %d", &interval)
		_, _ = fmt.Sscanf(l, "    ServerAliveCountMax %d", &count)
	}
	if keep, resume := time.Duration(interval*count)*time.Second, agent.DefaultConfig("/").ResumeTimeout; keep <= resume {
		t.Errorf("ssh gives up after %v without an answer (ServerAliveInterval %d × ServerAliveCountMax %d), within sandmux's resume timeout %v", keep, interval, count, resume)
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "Host ") && !strings.HasPrefix(l, "    ") {
			t.Errorf("stray line %q", l)
		}
	}

	got, err = sshConfigBlock("/usr/bin/sandmux", "sb-*", "root", "wss://{host}.example/t?a=1%20")
	if err != nil {
		t.Fatal(err)
	}
	if want := "    ProxyCommand /usr/bin/sandmux proxy --url 'wss://{host}.example/t?a=1%%20' %h\n"; !strings.Contains(got, want) {
		t.Errorf("block lacks %q (no suffix to strip, %% doubled):\n%s", want, got)
	}

	for _, bad := range []struct{ pattern, user, url, want string }{
		{"a b", "user", "", "--host-pattern"},
		{"*.e2b,*.sb", "user", "", "give one pattern"},
		{"!*.x", "user", "", "a negated pattern alone matches no host"},
		{"*.e2b", "", "", `--user "" is not a plain login name: give the login name in the sandbox alone, e.g. --user user`},
		{"*.e2b", "a b", "", `--user "a b" is not a plain login name: give the login name in the sandbox alone, e.g. --user user`},
		{"*.e2b", "user", "http://{host}", "scheme must be ws:// or wss://"},
	} {
		if _, err := sshConfigBlock("/x", bad.pattern, bad.user, bad.url); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("sshConfigBlock(%q, %q, %q) error %v, want %q", bad.pattern, bad.user, bad.url, err, bad.want)
		}
	}
}

func TestSSHConfigCommand(t *testing.T) {
	out, _, err := runApp(t, "ssh-config", "--host-pattern", "*.test", "--user", "me", "--url", "ws://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if !strings.Contains(out, "proxy --strip-suffix .test --url 'ws://127.0.0.1:1' %h") || !strings.Contains(out, "User me") {
		t.Fatalf("ssh-config printed:\n%s", out)
	}
	if !strings.Contains(out, "ProxyCommand /") {
		t.Fatalf("ProxyCommand is not an absolute path (binary %s):\n%s", exe, out)
	}
}

func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "complete -o bashdefault -o default -F _sandmux_bash_autocomplete sandmux",
		"zsh":  "compdef _sandmux_zsh_autocomplete sandmux",
		"fish": "complete -c sandmux",
	} {
		out, _, err := runApp(t, "completion", shell)
		if err != nil || !strings.Contains(out, marker) {
			t.Errorf("completion %s: err %v, output lacks %q:\n%.300s", shell, err, marker, out)
		}
		if shell == "fish" {
			for _, cmd := range []string{"forward", "doctor", "ssh-config", "proxy"} {
				if !strings.Contains(out, "-a '"+cmd+"'") && !strings.Contains(out, "-a "+cmd) {
					t.Errorf("fish completion does not offer %s:\n%s", cmd, out)
				}
			}
		}
	}
	_, _, err := runApp(t, "completion", "tcsh")
	if err == nil || err.Error() != `no completion for shell "tcsh": use bash, zsh or fish` {
		t.Errorf("completion tcsh: error %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	_, _, err = runApp(t, "completion")
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("completion without a shell: error %v, want one line", err)
	}
}

// TestCompletionWords checks what the shell scripts get from `sandmux ...
// --generate-bash-completion`: after `completion`, the shells; after a
// command that takes no subcommand, nothing (not "help h", which urfave/cli
// offered for every one, so bash proposed `sandmux completion help`).
func TestCompletionWords(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"completion"}, "bash\nzsh\nfish\n"},
		{[]string{"status"}, ""},
		{[]string{"server"}, ""},
		{[]string{"agent"}, ""},
		{[]string{"ssh-config"}, ""},
	} {
		// urfave/cli's default completion reads os.Args, not Run's.
		args := append(append([]string{"sandmux"}, tt.args...), "--generate-bash-completion")
		saved := os.Args
		os.Args = args
		out, _, err := runApp(t, args[1:]...)
		os.Args = saved
		if err != nil || out != tt.want {
			t.Errorf("%s: got %q, %v; want %q", strings.Join(args, " "), out, err, tt.want)
		}
	}
}

// TestFishCompletesFileFlags: fish completes file names only for flags
// marked TakesFile; the others get `-f` (no files), so `--ca <TAB>` and
// `--token-file <TAB>` offered nothing. The placeholders' backticks must
// not show in fish's descriptions either.
func TestFishCompletesFileFlags(t *testing.T) {
	out, _, err := runApp(t, "completion", "fish")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "`") {
		t.Errorf("fish completion has backticks in its descriptions:\n%s", out)
	}
	for _, flag := range []string{"ca", "token-file", "agent-dir", "state-dir", "authorized-keys"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, " -l "+flag+" ") {
				continue
			}
			found = true
			if strings.Contains(line, " -f ") {
				t.Errorf("fish does not complete file names for --%s: %s", flag, line)
			}
		}
		if !found {
			t.Errorf("fish completion lacks --%s", flag)
		}
	}
}

// TestReadmeCommandsHaveHelp runs `sandmux CMD --help` for every command
// the README names in code (`sandmux CMD` in backticks or code blocks).
func TestReadmeCommandsHaveHelp(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(string(b))
	if len(cmds) < 4 {
		t.Fatalf("found only %q in README.md; the parser is broken", cmds)
	}
	for _, cmd := range cmds {
		out, errOut, err := runApp(t, cmd, "--help")
		if err != nil || !strings.Contains(out, "sandmux "+cmd) {
			t.Errorf("sandmux %s --help: err %v\nstdout: %s\nstderr: %s", cmd, err, out, errOut)
		}
	}
}

var sandmuxCmd = regexp.MustCompile(`(?:^|[\s=(` + "`" + `'"])sandmux ([a-z][a-z-]*)`)

// readmeCommands returns the subcommands named in README.md's code: in
// fenced blocks and in backtick spans.
func readmeCommands(readme string) []string {
	seen := map[string]bool{}
	for _, c := range markdownCode(readme) {
		for _, m := range sandmuxCmd.FindAllStringSubmatch(c, -1) {
			seen[m[1]] = true
		}
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func TestReadmeCommandsParser(t *testing.T) {
	got := readmeCommands("text sandmux carries\n```sh\nsandmux server   # x\nssh -o 'ProxyCommand=sandmux proxy %h'\n```\n" +
		"Run `sandmux status --json` or `sandmux: error` and `sandmux.v2`.\n")
	if strings.Join(got, ",") != "proxy,server,status" {
		t.Fatalf("readmeCommands = %q", got)
	}
}

func TestProgressText(t *testing.T) {
	tests := []struct {
		p         agent.Progress
		age, wait time.Duration
		want      string
	}{
		{agent.Progress{State: agent.StateReconnecting, Attempt: 3, NextIn: 2 * time.Second}, 400 * time.Millisecond, 3 * time.Second,
			"sandmux: reconnecting to abc (attempt 3, next in 1.6s)"},
		{agent.Progress{State: agent.StateReconnecting, Attempt: 4, NextIn: time.Second}, 2 * time.Second, 5 * time.Second,
			"sandmux: reconnecting to abc (attempt 4, dialing)"},
		{agent.Progress{State: agent.StateConnecting, Attempt: 2, NextIn: 500 * time.Millisecond}, 0, 3 * time.Second,
			"sandmux: connecting to abc (attempt 2, next in 0.5s)"},
		{agent.Progress{State: agent.StateResuming}, 0, 7 * time.Second,
			"sandmux: resuming the session to abc (waiting 7s)"},
	}
	for _, tt := range tests {
		if got := progressText("abc", tt.p, tt.age, tt.wait); got != tt.want {
			t.Errorf("progressText(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestReconnectLine(t *testing.T) {
	// Quiet period not over: nothing is drawn, nothing cleared.
	w := &testutil.Buffer{}
	l := startReconnectLine(w, "abc", time.Hour)
	l.update(agent.Progress{State: agent.StateReconnecting, Attempt: 2, NextIn: time.Second})
	// Nothing to wait for: the test is that nothing happens while the
	// line's ticker fires a few times inside the quiet period.
	time.Sleep(3 * reconnectTick)
	l.finish()
	if w.String() != "" {
		t.Fatalf("a wait shorter than the quiet period drew %q", w.String())
	}

	// A long wait draws one updating line and clears it at the end.
	w = &testutil.Buffer{}
	l = startReconnectLine(w, "abc", 0)
	l.update(agent.Progress{State: agent.StateReconnecting, Attempt: 3, NextIn: 5 * time.Second})
	testutil.Poll(5*time.Second, func() bool { return strings.Count(w.String(), "\r") >= 2 })
	l.finish()
	out := w.String()
	if !strings.Contains(out, "\rsandmux: reconnecting to abc (attempt 3, next in ") || !strings.HasSuffix(out, "\r\033[K") {
		t.Fatalf("line output %q", out)
	}
	if strings.Contains(out, "\n") {
		t.Fatalf("the line must update in place, without newlines: %q", out)
	}
}

// TestCheckStateDir: a state directory under a file is refused before
// the server starts; one still to be made is fine, and nothing is made.
func TestCheckStateDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		if err := checkStateDir(dir); err == nil || !strings.Contains(err.Error(), "set --state-dir") {
			t.Errorf("checkStateDir(%s): %v, want an error saying to set --state-dir", dir, err)
		}
	}
	later := filepath.Join(base, "a", "b")
	if err := checkStateDir(later); err != nil {
		t.Errorf("checkStateDir(%s), not made yet: %v", later, err)
	}
	if _, err := os.Stat(filepath.Join(base, "a")); !os.IsNotExist(err) {
		t.Errorf("checkStateDir made %s (stat: %v)", later, err)
	}
}

// A sandbox may be called "help": no command taking a HOST reads that
// word as a request for its help text.
func TestHostMayBeHelp(t *testing.T) {
	for _, c := range newApp().Commands {
		if strings.HasSuffix(c.ArgsUsage, "HOST") && !c.HideHelpCommand {
			t.Errorf("sandmux %s HOST: %q would print help (set HideHelpCommand)", c.Name, "help")
		}
	}
}

func TestRTTText(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "-"},
		{2757468 * time.Microsecond, "2.76s"},
		{51234567 * time.Nanosecond, "51.23ms"},
		{183456 * time.Nanosecond, "183.46µs"},
		{999 * time.Nanosecond, "999ns"},
	} {
		if got := rttText(tt.d); got != tt.want {
			t.Errorf("rttText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// An empty token (an unset variable in a start script) is refused, not
// taken for "no authentication".
func TestEmptyTokenRefused(t *testing.T) {
	want := "--token (or SANDMUX_TOKEN) is empty: give the token, or leave both unset to run without authentication"
	if _, err := readToken("", true, ""); err == nil || err.Error() != want {
		t.Errorf("empty --token: %v, want %q", err, want)
	}
	if tok, err := readToken("", false, ""); tok != "" || err != nil {
		t.Errorf("no --token: %q, %v; want no authentication", tok, err)
	}
	if tok, err := readToken("s3cret", true, ""); tok != "s3cret" || err != nil {
		t.Errorf("--token s3cret: %q, %v", tok, err)
	}
}

// A token with a line end or spaces around it (a value read from a file
// into the template's environment) is taken without them, as the
// --token-file is: the client's header arrives trimmed, and every client
// got 401 for a token it had right. One with a line break inside is
// refused, as no client can send it.
func TestTokenTrimmed(t *testing.T) {
	for _, raw := range []string{"s3cret\n", " s3cret ", "s3cret\r\n"} {
		if tok, err := readToken(raw, true, ""); tok != "s3cret" || err != nil {
			t.Errorf("--token %q: %q, %v; want \"s3cret\"", raw, tok, err)
		}
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ token, file, want string }{
		{"s3cret\nsecond", "", "--token (or SANDMUX_TOKEN) holds a control character (a line break?), which no client can send in a header; give the token on one line"},
		{"", file, "--token-file " + file + " holds a control character (a line break?)"},
	} {
		if _, err := readToken(tt.token, tt.token != "", tt.file); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("token %q, file %q: %v; want %q", tt.token, tt.file, err, tt.want)
		}
	}
}

func TestParseMaxStartups(t *testing.T) {
	for v, want := range map[string]sshd.MaxStartups{
		"10:30:100":  {Start: 10, Rate: 30, Full: 100},
		"100:30:200": {Start: 100, Rate: 30, Full: 200},
		"50":         {Start: 50, Rate: 100, Full: 50},
	} {
		got, err := parseMaxStartups(v)
		if err != nil || got != want {
			t.Errorf("parseMaxStartups(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "0", "10:0:100", "10:101:100", "10:30", "1:2:3:4", "-1:30:100"} {
		if _, err := parseMaxStartups(v); err == nil {
			t.Errorf("parseMaxStartups(%q) accepted", v)
		}
	}
}

// TestProxyHelpExample: the ~/.ssh/config block `sandmux proxy --help`
// shows must reach the sandbox that ssh-config's does. With `Host *.e2b`,
// ssh passes %h as "<id>.e2b", which must be stripped before it fills
// {host}, or the proxy dials wss://8081-<id>.e2b.e2b.app.
func TestProxyHelpExample(t *testing.T) {
	var desc string
	for _, cmd := range newApp().Commands {
		if cmd.Name == "proxy" {
			desc = cmd.Description
		}
	}
	var help string
	for _, l := range strings.Split(desc, "\n") {
		if strings.Contains(l, "ProxyCommand") {
			help = strings.TrimSpace(l)
		}
	}
	block, err := sshConfigBlock("sandmux", "*.e2b", "user", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(desc, "Host *.e2b") || !strings.Contains(block, "    "+help+"\n") {
		t.Errorf("proxy --help shows %q under Host *.e2b; ssh-config writes:\n%s", help, block)
	}
}

// A listen address that is spelt right but cannot be used says what to
// change: a non-root server (E2B runs start commands as a plain user)
// asked for port 80 was told to "give HOST:PORT, e.g. --listen
// 0.0.0.0:8081", as if 127.0.0.1:80 were malformed.
func TestListenErrorSaysWhatToChange(t *testing.T) {
	bindErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	tests := []struct {
		addr string
		err  error
		want string
	}{
		{"127.0.0.1:80", bindErr(syscall.EACCES),
			"--listen 127.0.0.1:80: permission denied: ports below 1024 need root (or CAP_NET_BIND_SERVICE); pick a port from 1024 up, e.g. --listen 0.0.0.0:8081"},
		{"10.9.9.9:8081", bindErr(syscall.EADDRNOTAVAIL),
			"--listen 10.9.9.9:8081: 10.9.9.9 is not an address of this machine; give one of its own, or 0.0.0.0 for every interface, e.g. --listen 0.0.0.0:8081"},
		{"127.0.0.1:8081", bindErr(syscall.EADDRINUSE),
			"--listen 127.0.0.1:8081 is in use: is another server running there? stop it, or pick another port with --listen"},
	}
	for _, tt := range tests {
		if got := listenError("listen", tt.addr, "0.0.0.0:8081", tt.err).Error(); got != tt.want {
			t.Errorf("%s, %v:\n got %q\nwant %q", tt.addr, tt.err, got, tt.want)
		}
	}
}

// Windows's ssh starts ProxyCommand without a shell, and the program
// splits its command line by the Windows rules: single quotes stay in
// the arguments. The block quoted for sh named a program that does not
// exist ('C:\...\sandmux.exe', quotes and all).
func TestSSHConfigBlockWindows(t *testing.T) {
	defer func(old bool) { proxyCommandNoShell = old }(proxyCommandNoShell)
	proxyCommandNoShell = true
	got, err := sshConfigBlock(`C:\Program Files\sandmux\sandmux.exe`, "*.e2b", "user", "")
	if err != nil {
		t.Fatal(err)
	}
	want := `    ProxyCommand "C:\Program Files\sandmux\sandmux.exe" proxy --strip-suffix .e2b --url "wss://8081-{host}.e2b.app" %h` + "\n"
	if !strings.Contains(got, want) {
		t.Errorf("block lacks %q:\n%s", want, got)
	}
	if strings.Contains(got[strings.Index(got, "ProxyCommand"):], "'") {
		t.Errorf("a single quote in the ProxyCommand line:\n%s", got)
	}
}

// cmdLineQuote's output splits back to its input by the Windows rules
// (those syscall.EscapeArg writes for), including quotes and the
// backslashes before them.
func TestCmdLineQuote(t *testing.T) {
	for in, want := range map[string]string{
		`C:\Users\me\sandmux.exe`: `"C:\Users\me\sandmux.exe"`,
		`/usr/bin/sandmux`:        `/usr/bin/sandmux`,
		`a b`:                     `"a b"`,
		`say "hi"`:                `"say \"hi\""`,
		`a\"b`:                    `"a\\\"b"`,
		`dir\`:                    `"dir\\"`,
		``:                        `""`,
	} {
		if got := cmdLineQuote(in); got != want {
			t.Errorf("cmdLineQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// `sandmux agent --help` says what `sandmux agent` alone does (start one
// in the background); it named only --foreground and --stop.
func TestAgentHelpSaysWhatItDoesAlone(t *testing.T) {
	out, _, err := runApp(t, "agent", "--help")
	if err != nil || !strings.Contains(out, "sandmux agent                                  # start one in the background unless one runs") {
		t.Fatalf("agent --help: %v\n%s", err, out)
	}
}
