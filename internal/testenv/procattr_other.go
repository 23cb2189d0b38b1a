//go:build !linux

package testenv

import "syscall"

// ProcAttr is what a test's child process runs with: the user cred names
// (nil: the test's). Only Linux kills children with their parent.
func ProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
