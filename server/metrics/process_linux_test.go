package metrics

import (
	"math"
	"testing"
)

// TestSoftLimit reads the soft column, "unlimited" as procfs reports it.
func TestSoftLimit(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 1048576              files     
Max address space         unlimited            unlimited            bytes     
`
	if v, ok := softLimit([]byte(limits), "Max open files"); !ok || v != 1024 {
		t.Errorf("Max open files = %v, %v", v, ok)
	}
	if v, ok := softLimit([]byte(limits), "Max address space"); !ok || v != math.MaxUint64 {
		t.Errorf("Max address space = %v, %v", v, ok)
	}
	if _, ok := softLimit([]byte(limits), "Max processes"); ok {
		t.Error("found a limit that is not there")
	}
}
