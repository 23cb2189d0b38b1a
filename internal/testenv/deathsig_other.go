//go:build !linux

package testenv

import "os/exec"

// DieWithTest returns cmd: only Linux has a parent-death signal, so elsewhere
// a child outlives a test binary that panics.
func DieWithTest(cmd *exec.Cmd) *exec.Cmd { return cmd }
