package server

import "fmt"

// count is n with what it counts, in the singular for 1: a server run
// with a limit of 1 said "limit of 1 streams" and "1 connections are".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
