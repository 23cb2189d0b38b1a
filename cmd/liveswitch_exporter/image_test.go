package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// imageUser is the numeric user (and group) the image runs as.
const imageUser = 65532

// builtImage is one architecture's OCI archive written by scripts/image.sh.
type builtImage struct {
	arch, archive, binary string
	bytes                 int64
}

// buildah runs buildah with the test's private storage (CONTAINERS_STORAGE_CONF).
type buildah struct {
	bin string
	env []string
}

func (b buildah) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(os.Environ(), b.env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// requireBuildah returns buildah with a storage of the test's own (vfs, in a
// temporary directory, emptied at the end), or skips the test: buildah needs
// root for chroot isolation and its storage.
func requireBuildah(t *testing.T) buildah {
	t.Helper()
	bin := testenv.RequireTool(t, "buildah", "buildah")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("buildah's chroot isolation needs root; CI runs as root")
		}
		t.Skip("buildah's chroot isolation and vfs storage need root")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "storage.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, "[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "run")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b := buildah{bin: bin, env: []string{"CONTAINERS_STORAGE_CONF=" + conf}}
	t.Cleanup(func() {
		// Containers and images go before the directory does (their layers
		// are root's, some read-only).
		for _, args := range [][]string{{"rm", "--all"}, {"rmi", "--all", "--force"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), b.env...)
			_ = cmd.Run()
		}
	})
	return b
}

// buildImages runs scripts/image.sh for amd64 and arm64 with a known
// version and revision, and returns what it built.
func buildImages(t *testing.T, b buildah, version, revision string) map[string]builtImage {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../scripts/image.sh")
	cmd.Env = append(os.Environ(), append(b.env, "OUT="+out, "ARCHES=amd64 arm64", "VERSION="+version, "REVISION="+revision,
		"BUILDAH="+b.bin+" --storage-driver vfs")...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, stdout)
	}
	t.Logf("scripts/image.sh built amd64 and arm64 in %s", time.Since(start).Round(time.Second))
	images := map[string]builtImage{}
	sc := bufio.NewScanner(strings.NewReader(string(stdout)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("scripts/image.sh printed %q, want `arch archive bytes`", sc.Text())
		}
		n, _ := strconv.ParseInt(f[2], 10, 64)
		images[f[0]] = builtImage{arch: f[0], archive: f[1], binary: filepath.Join(out, "linux-"+f[0], name), bytes: n}
		t.Logf("image linux/%s: %s, %.1f MB", f[0], filepath.Base(f[1]), float64(n)/1e6)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if _, ok := images[arch]; !ok {
			t.Fatalf("scripts/image.sh built no %s image: %s", arch, stdout)
		}
	}
	return images
}

// ociConfig is the part of an image's OCI configuration the test compares.
type ociConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User         string              `json:"User"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Volumes      map[string]struct{} `json:"Volumes"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
}

// inspect makes a working container from archive, the way a user would
// (buildah from oci-archive:...), and returns it and its image's configuration.
func (b buildah) inspect(t *testing.T, archive string) (string, ociConfig) {
	t.Helper()
	ctr := b.run(t, "from", "--quiet", "--pull-never", "oci-archive:"+archive)
	var info struct {
		OCIv1 ociConfig `json:"OCIv1"`
	}
	if err := json.Unmarshal([]byte(b.run(t, "inspect", "--type", "container", ctr)), &info); err != nil {
		t.Fatal(err)
	}
	return ctr, info.OCIv1
}

// TestImageAgreesWithDockerfile builds the image of each architecture with
// scripts/image.sh and real buildah, holds its configuration to the
// Dockerfile's last stage, and runs the amd64 one: --version, then a real
// start that serves /metrics and takes a webhook, as user 65532, storing the
// fleet under /data.
func TestImageAgreesWithDockerfile(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	b := requireBuildah(t)
	const version, revision = "v0.0.0-imagetest", "0123456789abcdef0123456789abcdef01234567"
	images := buildImages(t, b, version, revision)
	docker := readImage(t, "../../Dockerfile")

	var amd64 string
	for _, arch := range []string{"amd64", "arm64"} {
		img := images[arch]
		ctr, cfg := b.inspect(t, img.archive)
		if arch == "amd64" {
			amd64 = ctr
		}
		t.Run(arch, func(t *testing.T) {
			if cfg.Architecture != arch || cfg.OS != "linux" {
				t.Errorf("the image says %s/%s", cfg.OS, cfg.Architecture)
			}
			checkBinary(t, img.binary, arch)
			compareWithDockerfile(t, cfg, docker, map[string]string{"VERSION": version, "REVISION": revision})
		})
	}
	t.Run("runs", func(t *testing.T) { runImage(t, b, amd64, version, revision) })
}

// checkBinary: the binary is a static ELF executable for arch.
func checkBinary(t *testing.T, path, arch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s: machine %s, want %s", path, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has an interpreter); CGO_ENABLED=0 builds a static one", path)
		}
	}
}

// compareWithDockerfile holds the image's configuration to the Dockerfile's
// last stage: user, entrypoint, environment, exposed port, volume, working
// directory and labels; a label given as "${ARG}" must carry what the build
// was given for that argument.
func compareWithDockerfile(t *testing.T, cfg ociConfig, docker image, args map[string]string) {
	t.Helper()
	c := cfg.Config
	if docker.from != "scratch" {
		t.Errorf("the Dockerfile's last stage is FROM %s; scripts/image.sh builds on scratch", docker.from)
	}
	if c.User != docker.user || c.User != fmt.Sprintf("%d:%d", imageUser, imageUser) {
		t.Errorf("user %q; the Dockerfile's is %q, want %d:%d", c.User, docker.user, imageUser, imageUser)
	}
	if !slices.Equal(c.Entrypoint, docker.entrypoint) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q; the Dockerfile's entrypoint is %q and it has no CMD", c.Entrypoint, c.Cmd, docker.entrypoint)
	}
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	delete(env, "PATH") // buildah's default, which Docker's scratch lacks; irrelevant to a static binary
	if fmt.Sprint(env) != fmt.Sprint(docker.env) {
		t.Errorf("environment %v; the Dockerfile's is %v", env, docker.env)
	}
	var exposed []string
	for p := range c.ExposedPorts {
		exposed = append(exposed, strings.TrimSuffix(p, "/tcp"))
	}
	if !slices.Equal(exposed, docker.exposed) {
		t.Errorf("exposed ports %v; the Dockerfile's are %v", exposed, docker.exposed)
	}
	var volumes []string
	for v := range c.Volumes {
		volumes = append(volumes, v)
	}
	if !slices.Equal(volumes, docker.volumes) || c.WorkingDir != docker.workdir {
		t.Errorf("volumes %v, working directory %q; the Dockerfile's are %v and %q", volumes, c.WorkingDir, docker.volumes, docker.workdir)
	}
	argRef := regexp.MustCompile(`^\$\{(\w+)\}$`)
	for k, want := range docker.labels {
		got, ok := c.Labels[k]
		switch m := argRef.FindStringSubmatch(want); {
		case !ok:
			t.Errorf("label %s: missing; the Dockerfile sets %q", k, want)
		case m == nil && got != want:
			t.Errorf("label %s = %q; the Dockerfile's is %q", k, got, want)
		case m != nil && m[1] == "CREATED":
			if _, err := time.Parse(time.RFC3339, got); err != nil {
				t.Errorf("label %s = %q, not an RFC 3339 time", k, got)
			}
		case m != nil && got != args[m[1]]:
			t.Errorf("label %s = %q; the build was given %s=%q", k, got, m[1], args[m[1]])
		}
	}
	for k := range c.Labels {
		if _, ok := docker.labels[k]; !ok && strings.HasPrefix(k, "org.opencontainers.") {
			t.Errorf("label %s: the Dockerfile does not set it", k)
		}
	}
}

// runImage runs the binary in the working container ctr as the image's
// configuration says, and checks what it does.
func runImage(t *testing.T, b buildah, ctr, version, revision string) {
	out := b.run(t, "run", "--isolation", "chroot", ctr, "--", "/bin/"+name, "--version")
	if !strings.Contains(out, "version "+version) || !strings.Contains(out, "revision: "+revision) {
		t.Errorf("--version in the image: %q, want version %s revision %s", out, version, revision)
	}
	if certs := countCertificates(t, b, ctr); certs < 10 {
		t.Errorf("the image's /etc/ssl/certs/ca-certificates.crt holds %d certificates", certs)
	}

	// A real start, with the image's environment and user; the network is
	// the host's, so that the test reaches its listener.
	listen := "--web.listen-address=" + testenv.FreeAddr(t)
	p := startBinary(t, b.bin, b.env, "run", "--isolation", "chroot", "--network", "host", ctr, "--",
		"/bin/"+name, listen)
	testenv.WaitFor(t, 60*time.Second, "the exporter in the image ready", func() bool {
		return strings.Contains(p.log(), "Fleet restored; ready")
	})
	if !strings.Contains(p.log(), `path=/data`) {
		t.Errorf("the exporter in the image did not store its fleet in /data:\n%s", p.log())
	}
	body, err := os.ReadFile("../../collector/event/testdata/mediaserver-registered.json")
	if err != nil {
		t.Fatal(err)
	}
	if code := post(t, p.url("/webhook"), body); code != http.StatusNoContent {
		t.Fatalf("webhook: %d", code)
	}
	code, metrics := get(p.url("/metrics"))
	if code != http.StatusOK || !strings.Contains(metrics, `id="dc5e5677-5b0d-4b3e-b2a5-42761849ae19"`) {
		t.Fatalf("/metrics: %d, without the media server the webhook registered:\n%.2000s", code, metrics)
	}

	pid := exporterPID(t, listen)
	if uid := procUID(t, pid); uid != imageUser {
		t.Errorf("the exporter runs as uid %d, want %d", uid, imageUser)
	}
	// The store, seen through the process's own root: files under /data,
	// every one the exporter's.
	data := fmt.Sprintf("/proc/%d/root/data", pid)
	var files int
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		if st.Uid != imageUser {
			t.Errorf("%s is owned by uid %d, want %d", strings.TrimPrefix(path, data), st.Uid, imageUser)
		}
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Error("the exporter in the image wrote nothing under /data")
	}
	// SIGTERM to the exporter itself (buildah run would kill it): it shuts
	// down cleanly, and so buildah run exits 0.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		p.exit <- err // for the cleanup's stop
		if err != nil || !strings.Contains(p.log(), "Shutting down") {
			t.Errorf("the exporter in the image did not stop cleanly on SIGTERM: %v\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the exporter in the image did not stop within 30s of SIGTERM")
	}
}

// countCertificates counts the PEM certificates of the image's CA bundle,
// read from the container's file system.
func countCertificates(t *testing.T, b buildah, ctr string) int {
	t.Helper()
	mnt := b.run(t, "mount", ctr)
	defer b.run(t, "umount", ctr)
	raw, err := os.ReadFile(filepath.Join(mnt, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			n++
		}
	}
	return n
}

// exporterPID finds the exporter started with the flag listen: the
// exporter itself, not buildah, whose command line names the same flag.
func exporterPID(t *testing.T, listen string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if args[0] == "/bin/"+name && slices.Contains(args, listen) {
			return pid
		}
	}
	t.Fatalf("no process /bin/%s %s", name, listen)
	return 0
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// procUID is the real user id of a process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return mustAtoi(t, f[1])
		}
	}
	t.Fatalf("/proc/%d/status has no Uid line", pid)
	return 0
}
