//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package server

import "syscall"

// canPeek is false here: connections keep their read buffer while idle.
const canPeek = false

func waitReadable(syscall.RawConn) error { return nil }
