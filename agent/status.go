package agent

import "time"

// Status is the agent's state as `sandmux status` shows it.
type Status struct {
	PID     int       `json:"pid"`
	Version string    `json:"version"` // the agent's build, which may be older than the caller's
	Started time.Time `json:"started"`
	Socket  string    `json:"socket"` // the path proxies connect to
	// Streams counts the proxy connections open now, over all sessions.
	Streams  int             `json:"open_streams"`
	Sessions []SessionStatus `json:"sessions"`
	// SOCKS says the agent dials through socks5:// and socks5h://
	// proxies; one that predates them refuses them as unsupported.
	SOCKS bool `json:"socks,omitempty"`
	// HTTPSProxy says the agent dials through https:// proxies (over
	// TLS); one that predates them refuses them as unsupported.
	HTTPSProxy bool `json:"https_proxy,omitempty"`
}

// Session states.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateResuming     = "resuming"
	StateReconnecting = "reconnecting"
	StateFailed       = "failed"
	StateRaw          = "raw"
	// StateIdle: the server closed the session on purpose (its idle
	// timeout, or a shutdown), or a session that cannot resume was lost;
	// the next request dials a new one.
	StateIdle = "idle"
)

// SessionStatus describes one shared session.
type SessionStatus struct {
	// URL is the server URL with any credentials masked.
	URL string `json:"url"`
	// Host is the HOST (the sandbox id) named by the proxy that asked
	// for the session first.
	Host string `json:"host,omitempty"`
	// Proxy is the HTTP proxy the session goes through, credentials
	// masked; "" for a direct one.
	Proxy string `json:"proxy,omitempty"`
	// Options names the settings that set this session apart from
	// others to the same URL ("token", "header NAME", "no resume",
	// "resume timeout 1m0s", "insecure", "ca"), never their values.
	Options []string `json:"options,omitempty"`
	// State is one of the State constants.
	State string `json:"state"`
	// Reason is why the session is reconnecting or failed.
	Reason string `json:"reason,omitempty"`
	// ConnectedSince is when the current connection was dialled (a
	// resume keeps it); zero while there is none.
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// ResumingSince is when the WebSocket of a resuming session was
	// lost (its Reason says why, and how the last attempt failed).
	ResumingSince time.Time `json:"resuming_since,omitzero"`
	// Connects counts successful dials; Reconnects those after the first.
	Connects   int `json:"connects"`
	Reconnects int `json:"reconnects"`
	DialErrors int `json:"dial_errors"` // failed dials, over the session's life
	// LastRTT is the current connection's latest ping round trip.
	LastRTT time.Duration `json:"last_rtt_ns"`
	// OpenStreams counts the proxy connections open now; Streams all
	// those the session has carried.
	OpenStreams int `json:"open_streams"`
	// Waiting counts proxy requests for this session whose stream has
	// not started yet: while it connects or reconnects, the proxies it
	// holds up.
	Waiting int   `json:"waiting_requests"`
	Streams int64 `json:"streams_total"`
	// BytesIn and BytesOut count what the session received and sent
	// since the first proxy asked for it, as its multiplexer reads and
	// writes it: mux framing included, a resume's replay not.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Resumable is true when the session survives a lost WebSocket;
	// Resumes counts how often it did, Replayed the bytes resent.
	Resumable bool  `json:"resumable"`
	Resumes   int64 `json:"resumes"`
	Replayed  int64 `json:"bytes_replayed"`
	// Unacked is what the server has not acknowledged yet: bytes on the
	// path, which a resume would replay.
	Unacked int64 `json:"bytes_unacked"`
}
