package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// This file reads webhook JSON by hand: one pass over a body checks it
// against RFC 8259 and hands out each member's value as a slice of the body,
// with neither maps nor reflection nor a copy. jsontext (the streaming layer
// of encoding/json/v2) did the same with twice the cost per event, most of it
// in its general machinery (a state stack, per-token bookkeeping, a copy of
// the input into its buffer): BenchmarkDecode and BenchmarkWalk measure the
// difference, and FuzzWalkMatchesJSONText holds this walker to jsontext's
// verdict on any input. Escaped strings are still unquoted by jsontext.

// errNull reports a JSON null where an object was expected.
var errNull = errors.New("null")

// errTooDeep refuses JSON nested deeper than maxDepth, which no real
// event comes near: it bounds the walker's recursion.
var errTooDeep = fmt.Errorf("JSON nested deeper than %d levels", maxDepth)

// syntaxError is malformed JSON: what was wrong and where, in one line.
type syntaxError struct {
	what string
	at   int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("malformed JSON: %s at byte %d", e.what, e.at)
}

// eachMember calls fn with the unquoted name and the raw value of every
// member of the JSON object raw, in order; both may alias raw. Malformed JSON
// anywhere in raw is reported rather than fn's error. It returns errNull for
// null.
func eachMember(raw []byte, fn func(name, value []byte) error) error {
	i := skipSpace(raw, 0)
	var stop error
	switch {
	case i < len(raw) && raw[i] == '{':
		var err error
		i, err = walkObject(raw, i, 1, func(name, value []byte) error {
			if stop != nil {
				return nil
			}
			unquoted, err := unquote(name)
			if err != nil {
				return malformed(err)
			}
			stop = fn(unquoted, value)
			return nil
		})
		if err != nil {
			return err
		}
	case bytes.HasPrefix(raw[i:], []byte("null")):
		i, stop = i+len("null"), errNull
	default:
		end, err := walkValue(raw, i, 0)
		if err != nil {
			return err
		}
		i, stop = end, fmt.Errorf("malformed JSON: %s, want an object", kindName(raw[i:end]))
	}
	if err := atEnd(raw, i); err != nil {
		return err
	}
	return stop
}

// arrayElements returns the elements of the JSON array raw.
func arrayElements(raw []byte) ([][]byte, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, unexpected(raw, i, "at start of an array")
	}
	var elems [][]byte
	i, err := walkArray(raw, i, 1, func(elem []byte) { elems = append(elems, elem) })
	if err != nil {
		return nil, err
	}
	return elems, atEnd(raw, i)
}

// atEnd checks that only white space follows the value ending at i.
func atEnd(raw []byte, i int) error {
	if i = skipSpace(raw, i); i < len(raw) {
		return unexpected(raw, i, "after the top-level value")
	}
	return nil
}

// unexpected describes the byte at i (or the end of the input) where the
// grammar wanted something else.
func unexpected(b []byte, i int, where string) error {
	if i >= len(b) {
		return errors.New("malformed JSON: unexpected end of JSON input")
	}
	c := b[i]
	if c < 0x20 || c >= 0x7f || c == '\'' {
		return &syntaxError{fmt.Sprintf("invalid character %#02x %s", c, where), i}
	}
	return &syntaxError{fmt.Sprintf("invalid character '%c' %s", c, where), i}
}

// walkValue checks the JSON value starting at b[i], at nesting depth, and
// returns the index just past it.
func walkValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, unexpected(b, i, "")
	}
	switch c := b[i]; {
	case c == '"':
		return walkString(b, i)
	case c == '{':
		return walkObject(b, i, depth+1, nil)
	case c == '[':
		return walkArray(b, i, depth+1, nil)
	case c == 't':
		return walkLiteral(b, i, "true")
	case c == 'f':
		return walkLiteral(b, i, "false")
	case c == 'n':
		return walkLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return walkNumber(b, i)
	}
	return i, unexpected(b, i, "at start of value")
}

// walkObject checks the object whose '{' is at b[i] and calls each, unless
// nil, with every member's name (quoted, as sent) and value.
func walkObject(b []byte, i, depth int, each func(name, value []byte) error) (int, error) {
	if depth > maxDepth {
		return i, errTooDeep
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, unexpected(b, i, "at start of an object member's name")
		}
		end, err := walkString(b, i)
		if err != nil {
			return end, err
		}
		name := b[i:end]
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return i, unexpected(b, i, "after an object member's name")
		}
		start := skipSpace(b, i+1)
		if i, err = walkValue(b, start, depth); err != nil {
			return i, err
		}
		if each != nil {
			if err := each(name, b[start:i]); err != nil {
				return i, err
			}
		}
		switch i = skipSpace(b, i); {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return i + 1, nil
		default:
			return i, unexpected(b, i, "after an object member's value")
		}
	}
}

// walkArray checks the array whose '[' is at b[i] and calls each, unless
// nil, with every element.
func walkArray(b []byte, i, depth int, each func(elem []byte)) (int, error) {
	if depth > maxDepth {
		return i, errTooDeep
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		start := i
		var err error
		if i, err = walkValue(b, start, depth); err != nil {
			return i, err
		}
		if each != nil {
			each(b[start:i])
		}
		switch i = skipSpace(b, i); {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			return i + 1, nil
		default:
			return i, unexpected(b, i, "after an array element")
		}
	}
}

// plain marks the bytes a JSON string may hold as they are: not the quote,
// the backslash, control characters, or the start of a multi-byte character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// walkString checks the string whose opening quote is at b[i]: escapes,
// control characters and UTF-8.
func walkString(b []byte, i int) (int, error) {
	for i++; ; {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, unexpected(b, i, "")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			n, err := walkEscape(b, i)
			if err != nil {
				return i, err
			}
			i += n
		case c < 0x20:
			return i, unexpected(b, i, "in string (control characters must be escaped)")
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, &syntaxError{"invalid UTF-8 in string", i}
			}
			i += size
		}
	}
}

// walkEscape checks the escape sequence at b[i] and returns its length.
func walkEscape(b []byte, i int) (int, error) {
	if i+1 >= len(b) {
		return 0, unexpected(b, i+1, "")
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		for k := i + 2; k < i+6; k++ {
			if k >= len(b) {
				return 0, unexpected(b, k, "")
			}
			if !isHex(b[k]) {
				return 0, unexpected(b, k, "in \\u escape")
			}
		}
		return 6, nil
	}
	return 0, unexpected(b, i+1, "in escape sequence")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// walkNumber checks the number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func walkNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, unexpected(b, i, "in number")
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || !isDigit(b[i]) {
			return i, unexpected(b, i, "after decimal point in number")
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, unexpected(b, i, "in exponent of number")
		}
		i = digits(b, i)
	}
	return i, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// walkLiteral checks that b[i:] starts with lit (true, false or null).
func walkLiteral(b []byte, i int, lit string) (int, error) {
	for k := range len(lit) {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return i + k, unexpected(b, i+k, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// jsonString decodes a JSON string; null is the empty string.
func jsonString(raw []byte) (string, error) {
	if string(raw) == "null" {
		return "", nil
	}
	b, err := unquote(raw)
	return string(b), err
}

// unquote returns the content of the JSON string raw, aliasing raw unless
// it holds escapes.
func unquote(raw []byte) ([]byte, error) {
	switch {
	case len(raw) < 2 || raw[0] != '"':
		return nil, errors.New("not a string")
	case bytes.IndexByte(raw, '\\') < 0:
		return raw[1 : len(raw)-1], nil
	}
	return jsontext.AppendUnquote(nil, raw)
}

// kindName names the kind of a JSON value as people say it.
func kindName(raw []byte) string {
	if raw = bytes.TrimLeft(raw, " \t\r\n"); len(raw) == 0 {
		return "value"
	}
	switch c := raw[0]; {
	case c == '"':
		return "string"
	case c == '-' || isDigit(c):
		return "number"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	case c == '[':
		return "array"
	case c == '{':
		return "object"
	}
	return "value"
}

// malformed turns an error of jsontext's unquoting into a one-line reason,
// without the package's prefix or a JSON pointer quoting the sender's names.
func malformed(err error) error {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && syn.Err != nil {
		return fmt.Errorf("malformed JSON: %s at byte %d", syn.Err, syn.ByteOffset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("malformed JSON: unexpected end of JSON input")
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "malformed JSON") {
		return err
	}
	return errors.New("malformed JSON: " + strings.TrimPrefix(msg, "jsontext: "))
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}
