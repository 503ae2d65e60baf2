//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// sftpJob is one `sftp -b batch` run that puts a random file into the
// sandbox and gets it back, for the tests that run many at once.
type sftpJob struct {
	src, remote, back, batch, sum string
	res                           result
}

// newSFTPJobs writes n random files of size bytes, and their batch
// scripts, in local; each is put to remoteDir and got back into local.
func newSFTPJobs(t *testing.T, n int, size int64, local, remoteDir string) []*sftpJob {
	t.Helper()
	jobs := make([]*sftpJob, n)
	for i := range jobs {
		j := &sftpJob{
			src:    filepath.Join(local, fmt.Sprintf("par-%d.bin", i)),
			remote: filepath.Join(remoteDir, fmt.Sprintf("par-remote-%d.bin", i)),
			back:   filepath.Join(local, fmt.Sprintf("par-back-%d.bin", i)),
			batch:  filepath.Join(local, fmt.Sprintf("par-%d.batch", i)),
		}
		j.sum = sshtest.RandomFile(t, j.src, size)
		if err := os.WriteFile(j.batch, fmt.Appendf(nil, "put %s %s\nget %s %s\n", j.src, j.remote, j.remote, j.back), 0o600); err != nil {
			t.Fatal(err)
		}
		jobs[i] = j
	}
	return jobs
}

// checkSFTPJobs fails the test for each job that failed, or whose upload
// or download differs from its source.
func checkSFTPJobs(t *testing.T, jobs []*sftpJob) {
	t.Helper()
	for i, j := range jobs {
		if j.res.err != nil {
			t.Errorf("sftp %d: %s", i, j.res)
			continue
		}
		if got := sshtest.FileSHA256(t, j.remote); got != j.sum {
			t.Errorf("sftp %d: uploaded sha256 %s, want %s", i, got, j.sum)
		}
		if got := sshtest.FileSHA256(t, j.back); got != j.sum {
			t.Errorf("sftp %d: downloaded sha256 %s, want %s", i, got, j.sum)
		}
	}
}
