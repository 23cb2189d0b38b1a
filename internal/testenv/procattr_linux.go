package testenv

import "syscall"

// ProcAttr is what a test's child process runs with: the user cred names
// (nil: the test's), and SIGKILL when the test process dies, so that a
// test killed by its timeout (or one that left a child paused) leaves no
// process behind.
func ProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
