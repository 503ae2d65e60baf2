package client

import (
	"encoding/json"
	"strings"
	"unicode"
)

// maxEdgeBody is how much of a refused upgrade's body is read for an
// explanation: E2B's JSON answers are under 200 bytes.
const maxEdgeBody = 2048

// maxEdgeMessage bounds the message shown from an edge's body.
const maxEdgeMessage = 160

// edgeMessage is the "message" field of a JSON object body, as E2B's edge
// answers a refused connection ({"sandboxId": …, "message": "The sandbox
// was not found"}), made safe for one terminal line; "" for anything
// else (an HTML page, a plain-text line of unknown worth).
func edgeMessage(body []byte) string {
	var v struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return ""
	}
	msg := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, v.Message)
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > maxEdgeMessage {
		msg = string(r[:maxEdgeMessage]) + "…"
	}
	return msg
}
