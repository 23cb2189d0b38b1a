package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithTest makes cmd's process die with the test binary that started it:
// a test that times out or panics ends the binary without running its
// cleanups, and would leave the exporters, Redis servers and Prometheus it
// started running as orphans. Linux's parent-death signal kills them then;
// cleanups stop them on a normal end. It returns cmd, for chaining.
func DieWithTest(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return cmd
}
