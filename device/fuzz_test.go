package device_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
)

// FuzzOperatorPolicy sends arbitrary policy bodies to the operator API:
// nothing panics, the answer is 200 or 400, and a stored policy is one
// the request path can use.
func FuzzOperatorPolicy(f *testing.F) {
	for _, s := range []string{
		`{"min_version":"1.10.0","action":"notify","message":"Please update","translations":{"fr":"Mettez à jour"},"download_url":"https://apps.apple.com/app/id1","reason":"r"}`,
		`{"min_version":"1.x","reason":"r"}`,
		`{"blocked_versions":["1.9.3","1.10-rc.1"],"min_version_code":42,"blocked_version_codes":[50],"reason":"r"}`,
		`{"download_url":"market://details?id=com.example","reason":"r"}`,
		`{"download_url":"javascript:alert(1)","reason":"r"}`,
		`{"translations":{"fr":"","FR":"x"},"reason":"r"}`,
		`{"app_id":"other","reason":"r"}`, `{"reason":""}`, `{`, `[]`, `null`, `{"min_version":1}`,
	} {
		f.Add(s, "1.9.0", "fr-CA,en;q=0.5")
	}
	quiet := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body, version, lang string) {
		ctl, err := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{}), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer ctl.Close()
		ctx := context.Background()
		c := device.Client{DeviceID: "dev", AppID: "app", Platform: "ios", AppVersion: "1.0", ClientID: "c", AcceptLanguage: lang}
		if err := ctl.Register(ctx, c, device.Info{}); err != nil {
			t.Fatal(err)
		}
		h, _ := device.NewOperatorHandler(ctl, device.OperatorConfig{Logger: quiet,
			Authorizer: device.AuthorizerFunc(func(*http.Request, device.Operation) (string, error) { return "op", nil })})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("PUT", "/policies/app/ios", strings.NewReader(body)))
		switch w.Code {
		case 200:
		case 400:
			if _, err := ctl.Policy(ctx, "app", "ios"); !errors.Is(err, device.ErrNotFound) {
				t.Fatalf("a refused policy was stored: %v", err)
			}
			return
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		c.AppVersion = version
		_, err = ctl.Check(ctx, c)
		var r *device.Refusal
		if err != nil && !errors.As(err, &r) {
			t.Fatalf("stored policy unusable: %v", err)
		}
	})
}
