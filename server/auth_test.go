package server

import (
	"net/http"
	"testing"
)

// A resume's credentials are compared as the token check reads them, so
// a client (or an edge) that spells the header differently on the next
// upgrade still resumes, and another token never does.
func TestAuthHashFollowsTheTokenCheck(t *testing.T) {
	hash := func(v string) [32]byte {
		r := &http.Request{Header: http.Header{}}
		if v != "" {
			r.Header.Set("Authorization", v)
		}
		return authHash(r)
	}
	same := []string{"Bearer s3cret", "bearer s3cret", "BEARER   s3cret"}
	for _, v := range same[1:] {
		if hash(v) != hash(same[0]) {
			t.Errorf("%q and %q hash apart", v, same[0])
		}
	}
	for _, v := range []string{"Bearer other", "Bearer s3cret ", "", "Basic s3cret", "s3cret"} {
		if hash(v) == hash(same[0]) {
			t.Errorf("%q hashes as %q", v, same[0])
		}
	}
}
