package logstore

import "syscall"

const oDirect = syscall.O_DIRECT
