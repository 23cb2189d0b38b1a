//go:build unix

package embedded

import (
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// freeBytes is the space left to unprivileged writers on the file system
// holding dir.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}

// Modes of access.
const (
	canRead  = unix.R_OK
	canWrite = unix.W_OK
	canEnter = unix.X_OK
)

// access reports whether this process may use path as mode says (read-only
// file systems included), as a *fs.PathError with the system's reason.
func access(path string, mode uint32) error {
	if err := unix.Access(path, mode); err != nil {
		return &fs.PathError{Op: accessOp(mode), Path: path, Err: err}
	}
	return nil
}

// processUser names who the process runs as, for a refusal to say whose
// access is missing.
func processUser() string {
	return "uid " + strconv.Itoa(os.Geteuid()) + ", gid " + strconv.Itoa(os.Getegid())
}
