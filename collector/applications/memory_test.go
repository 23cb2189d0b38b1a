package applications

import (
	"context"
	"fmt"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications/callstate"
	"strconv"
	"testing"
)

// BenchmarkIngest measures counting one connection event from its body:
// decoding, the application cap, the memory of events, the counters and
// the connection table, every event distinct: the initializing, connected
// and closed of each connection, with fresh ids and times, as LiveSwitch
// sends them.
func BenchmarkIngest(b *testing.B) {
	tr, _ := newTestTracker(b, DefaultMaxApplications, callstate.DefaultMaxPending)
	ring := newBenchRing(3 * 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tr.Ingest(context.Background(), ring.next(i), nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchRing holds bodies whose timestamp and connection id are patched in
// place before each use, so that no two events are alike and building
// them allocates nothing.
type benchRing struct {
	bodies     [][]byte
	tsAt, idAt []int
}

const benchIDDigits = 10

func newBenchRing(n int) *benchRing {
	r := &benchRing{}
	ts := strconv.FormatInt(t0.UnixMilli(), 10)
	for i := range n {
		typ := benchTypes[i%len(benchTypes)]
		body := appEvent(0, typ, "app-"+strconv.Itoa(i/len(benchTypes)%3), fmt.Sprintf("c-%0*d", benchIDDigits, 0), "sfu")
		r.bodies = append(r.bodies, []byte(body))
		r.tsAt = append(r.tsAt, indexOf(body, ts))
		r.idAt = append(r.idAt, indexOf(body, `"c-`)+3)
	}
	return r
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	panic(sub)
}

var benchTypes = []string{"connection.initializing", "connection.connected", "connection.closed"}

// next returns the body of event i: of connection i/3, initializing at
// some time within the 50 minutes before testNow, connected 1 ms later,
// closed 1 ms after (len(r.bodies) is a multiple of 3).
func (r *benchRing) next(i int) []byte {
	k := i % len(r.bodies)
	body := r.bodies[k]
	n := len(benchTypes)
	putDigits(body[r.tsAt[k]:r.tsAt[k]+13], testNow.UnixMilli()-3_000_000+int64(i/n)%3_000_000+int64(i%n))
	putDigits(body[r.idAt[k]:r.idAt[k]+benchIDDigits], int64(i/n))
	return body
}

func putDigits(dst []byte, v int64) {
	for j := len(dst) - 1; j >= 0; j-- {
		dst[j] = byte('0' + v%10)
		v /= 10
	}
}
