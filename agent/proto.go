package agent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// protoVersion is bumped when a request or reply changes incompatibly; a
// proxy newer than its agent then restarts it.
const protoVersion = 1

// maxMessage bounds one control message, so a confused peer cannot make
// the agent allocate without limit.
const maxMessage = 1 << 20

// Operations a request can ask for.
const (
	opOpen   = "open"
	opStatus = "status"
	opStop   = "stop"
)

// request is what a proxy (or `sandmux status`) sends first.
type request struct {
	Version int    `json:"v"`
	Op      string `json:"op"`
	// Open carries what is needed to reach the server. Credentials travel
	// only here, never on a command line or into a log.
	Open *OpenRequest `json:"open,omitempty"`
}

// OpenRequest asks for a stream to Target on the server at URL.
type OpenRequest struct {
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
	Token  string              `json:"token,omitempty"`
	// CAPEM is the PEM of --ca, sent as content so the agent never reads
	// files on the proxy's behalf.
	CAPEM    string `json:"ca_pem,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	// Proxy is the proxy (http://, https://, socks5:// or socks5h://)
	// through which to reach URL, as the proxy's environment names it
	// (HTTPS_PROXY); "" = directly.
	Proxy string `json:"proxy,omitempty"`
	// ProxyCAPEM is the PEM of the certificates in the proxy's
	// SSL_CERT_FILE and SSL_CERT_DIR, sent with an
	// https:// Proxy: the roots its certificate is checked against, as a
	// --no-agent proxy's would be. A running agent's own system roots are
	// those of the environment it started in, read once.
	ProxyCAPEM string `json:"proxy_ca_pem,omitempty"`
	// Target is the allowlisted "host:port" to reach; "" = the default.
	Target string `json:"target,omitempty"`
	// ConnectTimeout bounds the wait for a (re)connecting session.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// Host is what the user typed, for messages.
	Host string `json:"host,omitempty"`
	// Progress asks the agent to report, while the open waits for a
	// (re)connecting session, each change as a reply with Progress set
	// before the final one. Open sets it when OnProgress is non-nil; an
	// agent that predates it ignores it and reports nothing.
	Progress bool `json:"progress,omitempty"`
	// Handoff offers the proxy's stdin and stdout to the agent (see
	// handoff.go). OpenStdio sets it.
	Handoff bool `json:"handoff,omitempty"`
	// Disown, with Handoff, says the proxy leaves once the agent holds
	// its descriptor (one socket, sent as stdin and stdout), which the
	// agent then serves alone (see fdpass.go). OpenFdpass sets it.
	Disown bool `json:"disown,omitempty"`
	// FrameIn offers to frame the proxy's bytes (see frame.go), so that
	// the agent can tell the end of its data from a cut. Open sets it.
	FrameIn bool `json:"frame_in,omitempty"`
	// Overflow lets the stream take a WebSocket of its own while the
	// shared session is at the server's stream limit: proxies set it, so
	// that an ssh gets in while forwarded connections fill the session.
	// A forward's own connections past the limit are refused, as the
	// server's limit means, and do not use up its --max-sessions.
	Overflow bool `json:"overflow,omitempty"`
	// Forward says the stream is a connection `sandmux forward` carries:
	// the line on a cut says to connect again, not to run the command
	// again (the forward goes on). An agent that predates it says the
	// latter.
	Forward bool `json:"forward,omitempty"`
	// Resume, if set, is the proxy's own resumption settings; a session
	// is shared only by requests with the same ones. Without it (a proxy
	// older than this) the agent's own settings apply.
	Resume *ResumeOptions `json:"resume,omitempty"`
	// OnProgress, if set, receives those reports. It runs on the caller's
	// goroutine inside Open and must not block.
	OnProgress func(Progress) `json:"-"`
	// StopCommand is what this side's lines tell a user to run to stop
	// the agent, as its caller knows how the user names its directory;
	// empty: `sandmux agent --stop`. Not sent.
	StopCommand string `json:"-"`
}

// ResumeOptions are a proxy's --no-resume and --resume-timeout.
type ResumeOptions struct {
	Off     bool          `json:"off,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"` // 0: the agent's
}

// Progress is an interim report on an open that waits for its session.
type Progress struct {
	// State is StateConnecting, StateReconnecting or StateResuming.
	State string `json:"state"`
	// Attempt is the number of the next dial in this outage (1 = first).
	Attempt int `json:"attempt,omitempty"`
	// NextIn is how long until that dial, as of the report; 0 = now.
	NextIn time.Duration `json:"next_in,omitempty"`
	// Reason is how the last dial of this outage failed, if one has, for
	// messages.
	Reason string `json:"reason,omitempty"`
}

// reply answers a request. For an accepted open, stream bytes follow.
type reply struct {
	Version int     `json:"v"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Status  *Status `json:"status,omitempty"`
	// Progress marks an interim reply to an open (see OpenRequest.Progress);
	// the final reply follows.
	Progress *Progress `json:"progress,omitempty"`
	// Handoff accepts an open request's Handoff: the proxy sends its
	// descriptors next.
	Handoff bool `json:"handoff,omitempty"`
	// Detach, with Handoff, says the agent accepts a detach after the
	// hand-off (see handoff.go); a proxy sends one only then, since an
	// older agent would take the byte for the proxy going away.
	Detach bool `json:"detach,omitempty"`
	// Disown, with Handoff, accepts an open request's Disown: after the
	// descriptors, one more reply says whether the agent holds them.
	Disown bool `json:"disown,omitempty"`
	// FrameIn accepts an open request's FrameIn: the proxy frames its
	// bytes from here on. An agent that predates it leaves it unset, and
	// the proxy sends raw bytes.
	FrameIn bool `json:"frame_in,omitempty"`
	// Proxy accepts an open request's Proxy: the session goes through
	// that HTTP proxy. An agent that predates it ignores the request's
	// Proxy and dials directly; the proxy then refuses its stream.
	Proxy bool `json:"proxy,omitempty"`
}

// writeMessage sends v as a 4-byte big-endian length and JSON. The length
// prefix (rather than a newline) lets the reader take exactly the message
// and leave the stream bytes behind it unread.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxMessage {
		return errMessageTooLarge
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// readMessage reads one message written by writeMessage into v.
func readMessage(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxMessage {
		return fmt.Errorf("%w: %d bytes", errMessageTooLarge, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
