package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// This file reads webhook JSON with jsontext, the streaming layer of
// encoding/json/v2 (github.com/go-json-experiment/json is its reference
// implementation, by the authors of the standard library's; the import moves
// to encoding/json/jsontext once that leaves GOEXPERIMENT). It walks a body
// once, hands out each value as a slice of the body, and needs neither maps
// nor reflection: decoding was a quarter of the exporter's CPU per webhook
// with encoding/json (9.4 µs and 43 allocations an event, now 3.3 µs and 15).

// errNull reports a JSON null where an object was expected.
var errNull = errors.New("null")

// scanner is a decoder with the buffer it reads: both are reused, so that
// reading a body allocates nothing but what is kept of it.
type scanner struct {
	dec jsontext.Decoder
	buf bytes.Buffer
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

// allowDuplicates lets the decoder pass repeated names, which the exporter
// finds itself (comparing without case).
var allowDuplicates = jsontext.AllowDuplicateNames(true)

// skipUTF8 spares the decoder its check of UTF-8 string by string: scan
// checks the whole input at once first, which costs a fraction of it.
var skipUTF8 = jsontext.AllowInvalidUTF8(true)

// scan runs fn over a decoder reading raw, which must hold exactly one JSON
// value; it reports malformed JSON with a one-line reason.
func scan(raw []byte, fn func(dec *jsontext.Decoder) error) error {
	if !utf8.Valid(raw) {
		return malformed(errors.New("invalid UTF-8"))
	}
	s := scanners.Get().(*scanner)
	defer scanners.Put(s)
	s.buf.Reset()
	s.buf.Write(raw) // a copy: the decoder consumes the buffer, valueOf slices raw
	dec := &s.dec
	dec.Reset(&s.buf, allowDuplicates, skipUTF8)
	if err := fn(dec); err != nil {
		return malformed(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return malformed(fmt.Errorf("data after the JSON value: %w", err))
	}
	return nil
}

// valueOf returns the value just read by dec as a slice of raw, the input
// of dec: it stays valid after dec moves on.
func valueOf(raw []byte, dec *jsontext.Decoder, v jsontext.Value) []byte {
	end := int(dec.InputOffset())
	return raw[end-len(v) : end]
}

// eachMember calls fn with the unquoted name and the raw value of every
// member of the JSON object raw, in order; both may alias raw. It returns
// errNull for null.
func eachMember(raw []byte, fn func(name, value []byte) error) error {
	var stop error
	err := scan(raw, func(dec *jsontext.Decoder) error {
		switch dec.PeekKind() {
		case 'n':
			_, _ = dec.ReadToken()
			stop = errNull
			return nil
		case '{':
		default:
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			stop = fmt.Errorf("malformed JSON: %s, want an object", kindName(v))
			return nil
		}
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() != '}' {
			quoted, err := dec.ReadValue() // the member's name
			if err != nil {
				return err
			}
			name, err := unquote(valueOf(raw, dec, quoted))
			if err != nil {
				return err
			}
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if stop == nil {
				stop = fn(name, valueOf(raw, dec, v))
			}
		}
		_, err := dec.ReadToken()
		return err
	})
	if err != nil {
		return err
	}
	return stop
}

// arrayElements returns the elements of the JSON array raw.
func arrayElements(raw []byte) ([][]byte, error) {
	var elems [][]byte
	err := scan(raw, func(dec *jsontext.Decoder) error {
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			elems = append(elems, valueOf(raw, dec, v))
		}
		_, err := dec.ReadToken()
		return err
	})
	return elems, err
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
	switch jsontext.Value(raw).Kind() {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "value"
}

// malformed turns a jsontext error into a one-line reason without the
// package's prefix or a JSON pointer quoting the sender's names.
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

// eachValidMember is eachMember for an object the decoder validated
// already (a member of an event it read whole): it walks the object without
// checking its syntax a second time. Only valid JSON may be given to it.
func eachValidMember(raw []byte, fn func(name, value []byte) error) error {
	i := skipSpace(raw, 0)
	switch {
	case bytes.HasPrefix(raw[i:], []byte("null")):
		return errNull
	case i >= len(raw) || raw[i] != '{':
		return fmt.Errorf("malformed JSON: %s, want an object", kindName(raw[i:]))
	}
	for i++; ; i++ { // past '{' or ','
		i = skipSpace(raw, i)
		if raw[i] == '}' {
			return nil
		}
		end := stringEnd(raw, i+1)
		name, err := unquote(raw[i : end+1])
		if err != nil {
			return err
		}
		i = skipSpace(raw, skipSpace(raw, end+1)+1) // past ':'
		vEnd := valueEnd(raw, i)
		if err := fn(name, raw[i:vEnd]); err != nil {
			return err
		}
		if i = skipSpace(raw, vEnd); raw[i] == '}' {
			return nil
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// valueEnd returns the index just past the valid JSON value at i.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i+1) + 1
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i+1)
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n' {
		i++
	}
	return i
}
