package device_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
)

// The operator marks a device stolen; its next request is refused, and
// restoring it lets it in again. Every change is in the audit trail.
func ExampleControl_SetStatus() {
	ctx := context.Background()
	ctl, _ := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{})})
	defer ctl.Close()

	phone := device.Client{DeviceID: "d-4711", AppID: "com.example.travel", Platform: "ios", AppVersion: "2.1.0", ClientID: "c-1"}
	if err := ctl.Register(ctx, phone, device.Info{UserID: "ana"}); err != nil {
		panic(err)
	}

	_, _ = ctl.SetStatus(ctx, device.StatusChange{DeviceID: "d-4711", Status: device.Stolen, Actor: "alice@ops", Reason: "reported stolen"})
	_, err := ctl.Check(ctx, phone)
	var refusal *device.Refusal
	if errors.As(err, &refusal) {
		fmt.Println(refusal.Status, refusal.Code)
	}

	_, _ = ctl.SetStatus(ctx, device.StatusChange{DeviceID: "d-4711", Status: device.Active, Actor: "alice@ops", Reason: "found in the taxi"})
	_, err = ctl.Check(ctx, phone)
	fmt.Println("after restoring:", err)

	trail, _ := ctl.Audit(ctx, device.AuditQuery{DeviceID: "d-4711"})
	for _, e := range trail {
		fmt.Printf("%s %s -> %s: %s\n", e.Actor, e.From, e.To, e.Reason)
	}
	// Output:
	// 403 device_blocked
	// after restoring: <nil>
	// alice@ops stolen -> active: found in the taxi
	// alice@ops active -> stolen: reported stolen
}

// Raising the minimum version: first notify (the call succeeds and carries
// the message once), then block.
func ExampleControl_SetPolicy() {
	ctx := context.Background()
	ctl, _ := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{})})
	defer ctl.Close()
	old := device.Client{DeviceID: "d-1", AppID: "com.example.travel", Platform: "ios", AppVersion: "1.9.1", ClientID: "c-1", AcceptLanguage: "fr-CH, en;q=0.5"}
	_ = ctl.Register(ctx, old, device.Info{})

	policy := device.Policy{
		AppID: "com.example.travel", Platform: "ios", MinVersion: "1.10.0", Action: device.Notify,
		Message:      "Version 1.10 fixes a security issue. Please update.",
		Translations: map[string]string{"fr": "La version 1.10 corrige une faille. Veuillez mettre à jour."},
		DownloadURL:  "https://apps.apple.com/app/id123456789",
	}
	_, _ = ctl.SetPolicy(ctx, device.PolicyChange{Policy: policy, Actor: "alice@ops", Reason: "CVE-2026-0001"})
	notice, err := ctl.Check(ctx, old)
	fmt.Println(err, notice.Message)
	notice, err = ctl.Check(ctx, old)
	fmt.Println(err, notice == nil)

	policy.Action = device.Block
	_, _ = ctl.SetPolicy(ctx, device.PolicyChange{Policy: policy, Actor: "alice@ops", Reason: "grace period over"})
	_, err = ctl.Check(ctx, old)
	var refusal *device.Refusal
	errors.As(err, &refusal)
	fmt.Println(refusal.Code, refusal.DownloadURL)
	// Output:
	// <nil> La version 1.10 corrige une faille. Veuillez mettre à jour.
	// <nil> true
	// app_version_blocked https://apps.apple.com/app/id123456789
}

// The request-path stage. The host's extract function reads the client
// that its authentication stage established.
func ExampleControl_Middleware() {
	ctx := context.Background()
	ctl, _ := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{})})
	defer ctl.Close()
	phone := device.Client{DeviceID: "d-1", AppID: "com.example.travel", Platform: "android", AppVersion: "1.2", ClientID: "c-1"}
	_ = ctl.Register(ctx, phone, device.Info{})
	_, _ = ctl.SetPolicy(ctx, device.PolicyChange{
		Policy: device.Policy{AppID: "com.example.travel", Platform: "android", MinVersion: "1.3", Action: device.Notify, Message: "Update available"},
		Actor:  "ops", Reason: "new release",
	})

	extract := func(r *http.Request) (device.Client, bool) { return phone, true } // e.g. from auth.PrincipalFrom
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reservation 42") })
	h := ctl.Middleware(extract)(api)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/reservations/42", nil))
	fmt.Println(w.Code, w.Body.String())
	fmt.Println(w.Header().Get(device.NoticeHeader))
	// Output:
	// 200 reservation 42
	// message=%"Update available", min_version="1.3"
}

// The operator API takes an Authorizer from the host. NewTokenAuthorizer
// suits scripts and small deployments.
func ExampleNewOperatorHandler() {
	ctl, _ := device.New(device.Config{Store: device.NewMemory(device.MemoryConfig{}), KV: kv.NewMemory(kv.MemoryConfig{})})
	defer ctl.Close()
	_, err := device.NewOperatorHandler(ctl, device.OperatorConfig{})
	fmt.Println(err)

	authz, _ := device.NewTokenAuthorizer(device.OperatorToken{Operator: "alice@ops", Token: "s3cret-generated-with-crypto-rand-32-bytes"})
	h, _ := device.NewOperatorHandler(ctl, device.OperatorConfig{Authorizer: authz})
	mux := http.NewServeMux()
	mux.Handle("/admin/device/", http.StripPrefix("/admin/device", h))

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/admin/device/devices", nil))
	fmt.Println(w.Code)
	r := httptest.NewRequest("GET", "/admin/device/devices", nil)
	r.Header.Set("Authorization", "Bearer s3cret-generated-with-crypto-rand-32-bytes")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// moat/device: operator handler needs an Authorizer (moat has no built-in admin accounts)
	// 401
	// 200 {"devices":[]}
}

// Versions compare as semantic versions; two parts mean a patch of zero.
func ExampleParseVersion() {
	for _, s := range []string{"1.10", "1.10.0-beta.1", "v1.10.0", "1.x"} {
		v, err := device.ParseVersion(s)
		if err != nil {
			fmt.Println(s, "malformed")
			continue
		}
		minimum, _ := device.ParseVersion("1.10.0")
		fmt.Println(s, v.String(), v.Compare(minimum))
	}
	// Output:
	// 1.10 1.10.0 0
	// 1.10.0-beta.1 1.10.0-beta.1 -1
	// v1.10.0 malformed
	// 1.x malformed
}
