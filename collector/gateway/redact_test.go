package gateway

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestKeyMask(t *testing.T) {
	const key = "Qx7vR2-mK9pL4"
	for _, tc := range []struct {
		key, text, want string
	}{
		{key, "refused " + key + " here", "refused <api-key> here"},
		{key, "cut " + key[:8] + "…", "cut <api-key>…"},
		{key, "middle x" + key[3:10] + "y", "middle x<api-key>y"},
		{key, "upper " + strings.ToUpper(key), "upper <api-key>"},
		{key, "twice " + key + key, "twice <api-key><api-key>"},
		{key, "short runs stay: " + key[:5] + " " + key[5:10], "short runs stay: Qx7vR 2-mK9"},
		{key, "a run then its tail: " + key[:6] + key[:3], "a run then its tail: <api-key>Qx7"},
		{key, "longest run wins: Qx7v" + key, "longest run wins: Qx7v<api-key>"},
		{key, "\xff\xfe" + key + "é", "\xff\xfe<api-key>é"},
		{key, "", ""},
		{"abc", "a short key abc is masked whole: abc", "a short key <api-key> is masked whole: <api-key>"},
		{"", "no key, no mask: Qx7vR2", "no key, no mask: Qx7vR2"},
	} {
		m := newKeyMask(tc.key)
		if got := m.mask(tc.text); got != tc.want {
			t.Errorf("mask(%q) with key %q = %q, want %q", tc.text, tc.key, got, tc.want)
		}
		if got := m.holds(tc.text); got != (tc.text != tc.want) {
			t.Errorf("holds(%q) = %v", tc.text, got)
		}
		if part := keyPart(m.mask(tc.text), tc.key); len(tc.key) > keyShownAtMost && part != "" {
			t.Errorf("mask(%q) leaves %q", tc.text, part)
		}
	}
}

// TestKeyMaskRandom: whatever the text around runs of the key, and however
// it is cut, no run of more than keyShownAtMost of the key's characters
// survives masking.
func TestKeyMaskRandom(t *testing.T) {
	const key = "Zq8-Ld3v-W0pa-Kr5s"
	m := newKeyMask(key)
	rng := rand.New(rand.NewPCG(21, 8))
	alphabet := key + " -_:\"…é\x00ABCxyz0123456789"
	randomText := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(6) {
			b.WriteString(randomText(rng.IntN(12)))
			i := rng.IntN(len(key))
			j := i + rng.IntN(len(key)-i) + 1
			part := key[i:j]
			if rng.IntN(2) == 0 {
				part = strings.ToUpper(part)
			}
			b.WriteString(part)
		}
		text := b.String()
		if n := rng.IntN(len(text) + 1); rng.IntN(2) == 0 {
			text = text[:n] // cut first, as a reason text was before
		}
		if part := keyPart(m.mask(text), key); part != "" {
			t.Fatalf("mask(%q) = %q leaves %q", text, m.mask(text), part)
		}
	}
}
