package storage

import "syscall"

// oDirect is the open flag for direct I/O (0 where there is none).
const oDirect = syscall.O_DIRECT
