package agent

import (
	"sort"

	"github.com/sandmux/sandmux/client"
)

// sessionOptions names what sets a session apart from others to the same
// URL: the parts of its key (see sessionKey) other than the URL and the
// HTTP proxy, which status shows already, by name and never by value. A
// proxy with its own --no-resume, --resume-timeout, token, headers or
// TLS trust gets a session of its own, and without these its row in
// `sandmux status` would read the same as the other's.
func sessionOptions(cfg client.Config) []string {
	var opts []string
	if cfg.Token != "" {
		opts = append(opts, "token")
	}
	names := make([]string, 0, len(cfg.Header))
	for name := range cfg.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		opts = append(opts, "header "+name)
	}
	if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
		opts = append(opts, "insecure")
	}
	if cfg.TLS != nil && cfg.TLS.RootCAs != nil {
		opts = append(opts, "ca")
	}
	if cfg.NoResume {
		opts = append(opts, "no resume")
	} else if d := client.DefaultConfig().Resume.Grace; cfg.Resume.Grace != d {
		opts = append(opts, "resume timeout "+cfg.Resume.Grace.String())
	}
	return opts
}
