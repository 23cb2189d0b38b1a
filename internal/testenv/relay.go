package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay is a TCP relay on loopback to a target address, which a test can
// pause: while paused, what the target sends is no longer passed on (it
// piles up unread, as on a network link that stalled). It lets a test make
// a Redis replica lag behind its master without privileges.
type Relay struct {
	Addr   string
	target string
	l      net.Listener

	mu     sync.Mutex
	paused bool
	wake   *sync.Cond
}

// StartRelay listens on a free loopback port and relays every connection
// to target until the test ends.
func StartRelay(t testing.TB, target string) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: l.Addr().String(), target: target, l: l}
	r.wake = sync.NewCond(&r.mu)
	t.Cleanup(func() { l.Close(); r.Resume() })
	go r.accept()
	return r
}

// Pause stops passing on what the target sends.
func (r *Relay) Pause() { r.set(true) }

// Resume passes it on again.
func (r *Relay) Resume() { r.set(false) }

func (r *Relay) set(paused bool) {
	r.mu.Lock()
	r.paused = paused
	r.mu.Unlock()
	r.wake.Broadcast()
}

func (r *Relay) accept() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		go r.relay(c)
	}
}

func (r *Relay) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	buf := make([]byte, 32<<10)
	for {
		r.mu.Lock()
		for r.paused {
			r.wake.Wait()
		}
		r.mu.Unlock()
		n, err := server.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
