package agent

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// credOf lays out fields as the kernel would: 32-bit each, in the host's
// byte order, from the start of the struct.
func credOf(t *testing.T, fields ...uint32) credBytes {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.NativeEndian, fields); err != nil {
		t.Fatal(err)
	}
	var b credBytes
	copy(b[:], buf.Bytes())
	return b
}

// TestCredLayouts: the uid is read from its own field of each system's
// struct (not the pid's or gid's beside it), in the host's byte order, and
// a uid past 1<<31 comes out as os.Getuid would give it.
func TestCredLayouts(t *testing.T) {
	const gid, pid = 1002, 1003
	var uid uint32 = 1<<31 + 1001
	want := int(uid) // what os.Getuid returns for it, on 32-bit systems too
	if got := sockpeercredUID(credOf(t, uid, gid, pid)); got != want {
		t.Errorf("OpenBSD sockpeercred{uid, gid, pid}: uid %d, want %d", got, want)
	}
	if got := unpcbidUID(credOf(t, pid, uid, gid)); got != want {
		t.Errorf("NetBSD unpcbid{pid, euid, egid}: uid %d, want %d", got, want)
	}
	// xucred{cr_version, cr_uid, cr_ngroups (short, then padding), cr_groups[0]...}
	got, err := xucredUID(credOf(t, 0, uid, 1, gid))
	if err != nil || got != want {
		t.Errorf("DragonFly xucred{0, uid, ...}: uid %d, %v, want %d", got, err, want)
	}
	if got, err := xucredUID(credOf(t, 1, uid, 1, gid)); err == nil {
		t.Errorf("DragonFly xucred of version 1: uid %d, want an error (unknown layout)", got)
	}
}
