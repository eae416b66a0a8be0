package moat_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/moatsec/moat"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
)

// Protect your handler: the README's snippet. checks are your security
// checks (package stepup); keys sign tokens; attestation rules say which
// apps must prove they are genuine.
func Example() {
	store := kv.NewMemory(kv.MemoryConfig{})
	stack, err := moat.New(moat.Config{
		Auth: auth.Config{
			Issuer: "https://api.example.com", Store: store, Clients: auth.NewMemoryClients(), Keys: keys,
			Checks: checks,
			Scopes: []auth.ScopeRule{{Scope: "reservations", Checks: []string{"UserLogin"}}},
			ACRs:   []auth.ACR{{Value: stepup.ACRMultiFactor, Checks: []string{"UserLogin", "SMSOTP"}}},
		},
		Devices:     device.Config{Store: device.NewMemory(device.MemoryConfig{})},
		Attestation: attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{appAttest}}}},
	})
	if err != nil {
		panic(err)
	}
	defer stack.Close()
	mux := http.NewServeMux()
	stack.Mount(mux) // /oauth/... and /.well-known/oauth-authorization-server
	pay := stack.MustProtect(moat.Route{Scopes: []string{"reservations"}, StepUp: &stepup.Policy{
		ACRValues: []string{stepup.ACRMultiFactor}, AMR: []string{stepup.AMRSMS}, MaxAge: 5 * time.Minute}})
	mux.Handle("POST /reservations/{id}/pay", pay(http.HandlerFunc(payHandler)))

	// A call without a token is refused.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "https://api.example.com/reservations/1/pay", nil))
	fmt.Println(rec.Code, rec.Header().Values("WWW-Authenticate")[0][:4])
	// Output: 401 DPoP
}
