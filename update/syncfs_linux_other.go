//go:build linux && !amd64 && !386

package update

import "syscall"

const sysSyncfs = syscall.SYS_SYNCFS
