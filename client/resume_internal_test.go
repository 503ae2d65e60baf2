package client

import (
	"testing"
	"time"
)

func TestResumeDialTimeout(t *testing.T) {
	for _, c := range []struct {
		attempt int
		limit   time.Duration
		want    time.Duration
	}{
		{0, 15 * time.Second, 3 * time.Second},
		{1, 15 * time.Second, 6 * time.Second},
		{2, 15 * time.Second, 12 * time.Second},
		{3, 15 * time.Second, 15 * time.Second},
		{1000, 15 * time.Second, 15 * time.Second},
		{0, 2 * time.Second, 2 * time.Second},
	} {
		if got := resumeDialTimeout(c.attempt, c.limit); got != c.want {
			t.Errorf("resumeDialTimeout(%d, %v) = %v, want %v", c.attempt, c.limit, got, c.want)
		}
	}
}
