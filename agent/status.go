package agent

import "time"

// Status is the agent's state as `sandmux status` shows it.
type Status struct {
	PID      int             `json:"pid"`
	Version  string          `json:"version"`
	Started  time.Time       `json:"started"`
	Socket   string          `json:"socket"`
	Streams  int             `json:"open_streams"`
	Sessions []SessionStatus `json:"sessions"`
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
	URL  string `json:"url"`
	Host string `json:"host,omitempty"`
	// Proxy is the HTTP proxy the session goes through, credentials
	// masked; "" for a direct one.
	Proxy string `json:"proxy,omitempty"`
	// Options names the settings that set this session apart from
	// others to the same URL ("token", "header NAME", "no resume",
	// "resume timeout 1m0s", "insecure", "ca"), never their values.
	Options []string `json:"options,omitempty"`
	State   string   `json:"state"`
	// Reason is why the session is reconnecting or failed.
	Reason         string    `json:"reason,omitempty"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// ResumingSince is when the WebSocket of a resuming session was
	// lost (its Reason says why, and how the last attempt failed).
	ResumingSince time.Time `json:"resuming_since,omitzero"`
	// Connects counts successful dials; Reconnects those after the first.
	Connects    int           `json:"connects"`
	Reconnects  int           `json:"reconnects"`
	DialErrors  int           `json:"dial_errors"`
	LastRTT     time.Duration `json:"last_rtt_ns"`
	OpenStreams int           `json:"open_streams"`
	// Waiting counts proxy requests for this session whose stream has
	// not started yet: while it connects or reconnects, the proxies it
	// holds up.
	Waiting  int   `json:"waiting_requests"`
	Streams  int64 `json:"streams_total"`
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
