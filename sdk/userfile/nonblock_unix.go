//go:build unix

package userfile

import "syscall"

// openNonBlock makes opening a named pipe return at once instead of
// waiting for a writer; it does nothing to a regular file.
const openNonBlock = syscall.O_NONBLOCK
