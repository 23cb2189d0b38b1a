// Package ring holds the bounded histories of the exporter (a server's last
// events, the last webhook deliveries): memory that never grows past a
// fixed number of entries, however long the exporter runs.
package ring

// Buffer keeps the last Cap values added. It grows as values come, so a
// short history costs only what it holds. It is not safe for concurrent use;
// its owner guards it.
type Buffer[T any] struct {
	buf  []T
	next int // where the next value goes once buf is full
	size int
}

// New returns an empty buffer of at most size values.
func New[T any](size int) Buffer[T] { return Buffer[T]{size: size} }

// Add keeps v, dropping the oldest value when the buffer is full.
func (b *Buffer[T]) Add(v T) {
	if len(b.buf) < b.size {
		if len(b.buf) == cap(b.buf) { // grow, but never past size
			grown := make([]T, len(b.buf), min(max(2*cap(b.buf), 2), b.size))
			copy(grown, b.buf)
			b.buf = grown
		}
		b.buf = append(b.buf, v)
		return
	}
	b.buf[b.next] = v
	b.next = (b.next + 1) % b.size
}

// Len is the number of values kept.
func (b *Buffer[T]) Len() int { return len(b.buf) }

// NewestFirst copies the values, the last added first.
func (b *Buffer[T]) NewestFirst() []T {
	n := len(b.buf)
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, b.buf[(b.next-1-i+2*n)%n])
	}
	return out
}
