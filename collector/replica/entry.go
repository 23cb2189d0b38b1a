package replica

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

// A log entry is written in a compact binary form, the first byte naming
// its version: a replica encodes and every replica decodes each entry, and
// encoding/json (reflection) was the largest cost of a replica's webhook.
// Entries of earlier versions, JSON objects, are still read, so that
// replicas can be upgraded one at a time.
const entryV1 byte = 1

// encodeEntry writes e in the binary form.
func encodeEntry(e *logEntry) ([]byte, error) {
	var w entryWriter
	w.buf = append(make([]byte, 0, 256), entryV1)
	w.str(e.Nonce)
	w.uvarint(uint64(len(e.Commands)))
	for _, c := range e.Commands {
		if err := w.command(c); err != nil {
			return nil, err
		}
	}
	return w.buf, nil
}

// decodeEntry reads an entry of any version.
func decodeEntry(data []byte) (logEntry, error) {
	var e logEntry
	switch {
	case len(data) == 0:
		return e, errors.New("empty entry")
	case data[0] == '{':
		return e, json.Unmarshal(data, &e)
	case data[0] != entryV1:
		return e, fmt.Errorf("entry of format %d, written by a newer exporter", data[0])
	}
	r := entryReader{buf: data[1:]}
	e.Nonce = r.str()
	n := r.count()
	if n > 0 {
		e.Commands = make([]*writer.Command, 0, n)
	}
	for range n {
		if r.err != nil {
			break
		}
		e.Commands = append(e.Commands, r.command())
	}
	if r.err == nil && len(r.buf) > 0 {
		r.err = errors.New("bytes after the entry")
	}
	return e, r.err
}

// Flags of a command in an entry.
const (
	hasForget byte = 1 << iota
	hasObservation
)

type entryWriter struct{ buf []byte }

func (w *entryWriter) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *entryWriter) varint(v int64)   { w.buf = binary.AppendVarint(w.buf, v) }
func (w *entryWriter) str(s string)     { w.uvarint(uint64(len(s))); w.buf = append(w.buf, s...) }

func (w *entryWriter) command(c *writer.Command) error {
	var flags byte
	if c.Forget != nil {
		flags |= hasForget
	}
	if c.Observation != nil {
		flags |= hasObservation
	}
	w.buf = append(w.buf, flags)
	w.varint(c.ReceivedMs)
	w.varint(c.SweepMs)
	if c.Forget != nil {
		w.str(c.Forget.Origin)
		w.str(c.Forget.ID)
	}
	if c.Observation != nil { // a poll every interval: JSON does
		o, err := json.Marshal(c.Observation)
		if err != nil {
			return err
		}
		w.uvarint(uint64(len(o)))
		w.buf = append(w.buf, o...)
	}
	w.uvarint(uint64(len(c.Events)))
	for i := range c.Events {
		w.event(&c.Events[i])
	}
	return nil
}

func (w *entryWriter) event(ev *event.Event) {
	w.varint(ev.Timestamp)
	w.buf = append(w.buf, byte(ev.Kind), byte(ev.Action))
	w.str(ev.Type)
	w.str(ev.Origin)
	w.uvarint(uint64(max(ev.Server.CoreCount, 0)))
	for _, s := range infoStrings(&ev.Server) {
		w.str(*s)
	}
}

// infoStrings lists the string fields of an Info, in the entry's order.
func infoStrings(i *event.Info) [8]*string {
	return [8]*string{&i.ID, &i.Version, &i.MachineName, &i.OperatingSystem, &i.OperatingSystemVersion,
		&i.Architecture, &i.DeploymentID, &i.Region}
}

// entryReader reads the binary form; the first error sticks.
type entryReader struct {
	buf []byte
	err error
}

var errShortEntry = errors.New("truncated entry")

func (r *entryReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.buf = nil
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail(errShortEntry)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *entryReader) varint() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail(errShortEntry)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a number of items, each taking at least a byte.
func (r *entryReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.fail(errShortEntry)
		return 0
	}
	return int(n)
}

func (r *entryReader) bytes() []byte {
	n := r.count()
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}

func (r *entryReader) str() string { return string(r.bytes()) }

func (r *entryReader) byte() byte {
	if len(r.buf) == 0 {
		r.fail(errShortEntry)
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

func (r *entryReader) command() *writer.Command {
	c := &writer.Command{}
	flags := r.byte()
	c.ReceivedMs, c.SweepMs = r.varint(), r.varint()
	if flags&hasForget != 0 {
		c.Forget = &fleet.Key{Origin: r.str(), ID: r.str()}
	}
	if flags&hasObservation != 0 {
		c.Observation = new(fleet.Observation)
		if err := json.Unmarshal(r.bytes(), c.Observation); err != nil && r.err == nil {
			r.fail(err)
		}
	}
	if n := r.count(); n > 0 {
		c.Events = make([]event.Event, n)
	}
	for i := range c.Events {
		r.event(&c.Events[i])
	}
	return c
}

func (r *entryReader) event(ev *event.Event) {
	ev.Timestamp = r.varint()
	ev.Kind, ev.Action = event.Kind(r.byte()), event.Action(r.byte())
	if ev.Kind > event.KindIgnored || ev.Action >= event.NumActions {
		r.fail(fmt.Errorf("event of kind %d, action %d", ev.Kind, ev.Action))
	}
	ev.Type = event.Intern(r.bytes())
	ev.Origin = event.Intern(r.bytes())
	if cores := r.uvarint(); cores <= event.MaxCoreCount {
		ev.Server.CoreCount = int(cores)
	} else {
		r.fail(errors.New("core count out of range"))
	}
	// The event's strings in one allocation, as when a webhook is decoded.
	var texts [8][]byte
	size := 0
	for i := range texts {
		texts[i] = r.bytes()
		size += len(texts[i])
	}
	if r.err != nil || size == 0 {
		return
	}
	arena := make([]byte, 0, size)
	for i, s := range infoStrings(&ev.Server) {
		if len(texts[i]) > 0 {
			start := len(arena)
			arena = append(arena, texts[i]...)
			*s = unsafe.String(&arena[start], len(texts[i]))
		}
	}
}
