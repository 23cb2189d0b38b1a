package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// OpenSSLSignature signs body as LiveSwitch signs application webhooks,
// base64(HMAC-SHA256(body, secret)), with Debian's openssl and base64
// rather than the code under test:
//
//	openssl dgst -sha256 -hmac <secret> -binary | base64
func OpenSSLSignature(t testing.TB, body []byte, secret string) string {
	t.Helper()
	RequireTool(t, "openssl", "openssl")
	RequireTool(t, "base64", "coreutils")
	cmd := exec.Command("sh", "-c", `openssl dgst -sha256 -hmac "$HMAC_SECRET" -binary | base64 -w0`)
	cmd.Env = append(os.Environ(), "HMAC_SECRET="+secret)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
