package gateway

import "strings"

// keyShownAtMost is the longest run of the API key's characters that text
// from the exporter may hold: a Gateway (or a proxy before it) that echoes
// the key back, whole or cut, must not put a useful part of it in a log
// line, an error or a label.
const keyShownAtMost = 5

// keyMaskText replaces each run of the key in a text.
const keyMaskText = "<api-key>"

// keyMask finds the API key, or any part of it longer than keyShownAtMost
// bytes, in text that came from the Gateway, ignoring ASCII case. The zero
// value (no key) finds nothing.
type keyMask struct {
	key string // lower case
	min int    // the shortest run that counts
}

func newKeyMask(key string) keyMask {
	return keyMask{key: lowerASCII(key), min: min(keyShownAtMost+1, len(key))}
}

// mask returns s with every run of the key's characters of min bytes or
// more replaced by keyMaskText. The longest run at each place is taken, so
// what is left around a mask is shorter than min: no part of the key longer
// than keyShownAtMost survives, however the text was cut before.
func (k keyMask) mask(s string) string {
	if k.key == "" || len(s) < k.min {
		return s
	}
	lower := lowerASCII(s)
	var b strings.Builder
	done := 0
	for i := 0; i+k.min <= len(s); {
		n := k.runAt(lower, i)
		if n == 0 {
			i++
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[done:i])
		b.WriteString(keyMaskText)
		i += n
		done = i
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// holds reports whether s holds a run of the key that mask would hide.
func (k keyMask) holds(s string) bool {
	return k.key != "" && k.mask(s) != s
}

// runAt is the length of the longest run of the key's characters starting
// at lower[i], or 0 if it is shorter than min.
func (k keyMask) runAt(lower string, i int) int {
	if !strings.Contains(k.key, lower[i:i+k.min]) {
		return 0
	}
	n := k.min
	for i+n < len(lower) && strings.Contains(k.key, lower[i:i+n+1]) {
		n++
	}
	return n
}

// lowerASCII lowers ASCII letters only, byte by byte, so that offsets
// stay those of the original text, whatever its encoding.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
