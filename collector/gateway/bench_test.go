package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecodeMediaServers reads a list of 1000 media servers item by
// item, as a poll does, beside reading it in one json.Unmarshal into typed
// fields, as polls did before (which one bad item failed whole).
func BenchmarkDecodeMediaServers(b *testing.B) {
	items := make([]string, 1000)
	for i := range items {
		items[i] = fmt.Sprintf(`{"id":"ms-%04d","region":"eu-west","deploymentId":"prod","version":"1.24.2.0","coreCount":16,`+
			`"available":true,"active":true,"overCapacity":false,"draining":false,"usedCapacity":0.42,`+
			`"ipAddresses":["10.0.0.1"],"publicIPAddress":"203.0.113.1"}`, i)
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	mask := newKeyMask(testKey)
	b.Run("items", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			servers, skipped, err := decodeMediaServers(body, mask)
			if err != nil || len(skipped) != 0 || len(servers) != len(items) {
				b.Fatal(err, skipped)
			}
		}
	})
	b.Run("whole-reference", func(b *testing.B) {
		type answer struct {
			ID, Region, DeploymentID, Version         *string
			CoreCount                                 *int
			UsedCapacity                              *float64
			Available, Active, Draining, OverCapacity *bool
		}
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var out []answer
			if err := json.Unmarshal(body, &out); err != nil || len(out) != len(items) {
				b.Fatal(err)
			}
		}
	})
}
