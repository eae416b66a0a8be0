package device_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
)

// BenchmarkEnforce measures the request path: device status plus version
// policy with a warm cache (issue 4: <= 150 ns, 0 allocs). Baselines in
// the same run: "floor-map-lookups" (two map reads keyed like the caches,
// the least such a check can cost) and "bare-handler" for the middleware.
func BenchmarkEnforce(b *testing.B) {
	ctx := context.Background()
	store := device.NewMemory(device.MemoryConfig{})
	ctl, err := device.New(device.Config{Store: store, KV: kv.NewMemory(kv.MemoryConfig{}), CacheTTL: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	c := device.Client{DeviceID: "3f1c2b9e-device", AppID: app, Platform: platform, AppVersion: "1.12.4", ClientID: "client-1"}
	if err := ctl.Register(ctx, c, device.Info{}); err != nil {
		b.Fatal(err)
	}
	_, err = ctl.SetPolicy(ctx, device.PolicyChange{Policy: device.Policy{
		AppID: app, Platform: platform, MinVersion: "1.10.0", BlockedVersions: []string{"1.9.3", "1.11.0-beta.2"},
	}, Actor: "ops", Reason: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ctl.Check(ctx, c); err != nil { // warm the cache
		b.Fatal(err)
	}

	b.Run("floor-map-lookups", func(b *testing.B) {
		type k struct{ a, b string }
		m1 := map[k]int{{c.DeviceID, c.AppID}: 1}
		m2 := map[k]int{{c.AppID, c.Platform}: 1}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n += m1[k{c.DeviceID, c.AppID}] + m2[k{c.AppID, c.Platform}]
		}
		_ = n
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ctl.Check(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ctl.Check(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	extract := func(*http.Request) (device.Client, bool) { return c, true }
	req := httptest.NewRequest(http.MethodGet, "/reservations/1", nil)
	w := httptest.NewRecorder()
	b.Run("bare-handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok.ServeHTTP(w, req)
		}
	})
	h := ctl.Middleware(extract)(ok)
	b.Run("middleware", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
}
