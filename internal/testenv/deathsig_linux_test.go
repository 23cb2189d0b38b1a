package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestDieWithTest runs this test binary again as a "test" that starts a
// long-lived child and then dies without running any cleanup, as a test
// that times out does. The child started with DieWithTest must die with it;
// one started without must survive (so that the test shows something).
func TestDieWithTest(t *testing.T) {
	if os.Getenv("TESTENV_ORPHAN_PARENT") != "" {
		orphanParent()
		return
	}
	for _, tc := range []struct {
		mode string
		dies bool
	}{{"die", true}, {"survive", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			parent := exec.Command(os.Args[0], "-test.run=^TestDieWithTest$")
			parent.Env = append(os.Environ(), "TESTENV_ORPHAN_PARENT="+tc.mode)
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("the parent said nothing: %v", err)
			}
			pid, err := strconv.Atoi(line[:len(line)-1])
			if err != nil {
				t.Fatalf("the parent said %q", line)
			}
			_ = parent.Wait()
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if tc.dies {
				WaitFor(t, 10*time.Second, "the orphan gone", func() bool { return gone(pid) })
				return
			}
			if gone(pid) {
				t.Fatal("a child started without DieWithTest died with its parent: the test proves nothing")
			}
		})
	}
}

// orphanParent starts `sleep 60` (with DieWithTest unless told to let it
// survive), prints its pid and exits at once, with no cleanup.
func orphanParent() {
	cmd := exec.Command("sleep", "60")
	if os.Getenv("TESTENV_ORPHAN_PARENT") == "die" {
		DieWithTest(cmd)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println(cmd.Process.Pid)
	os.Exit(2)
}

// gone reports whether no process pid exists (a zombie counts as gone: it
// no longer runs).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}
