package moat_test

import (
	"crypto/x509"
	"net/http"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
)

// What Example takes as given.
var (
	keys      *auth.KeySet
	checks    []auth.Check
	appAttest attest.Verifier
)

func init() {
	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	if err != nil {
		panic(err)
	}
	if keys, err = auth.NewKeySet(signer, 1); err != nil {
		panic(err)
	}
	store := kv.NewMemory(kv.MemoryConfig{})
	hasher, err := stepup.NewPasswordHasher(stepup.HasherConfig{})
	if err != nil {
		panic(err)
	}
	login, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: stepup.NewMemoryDirectory(hasher), Hasher: hasher, Store: store})
	if err != nil {
		panic(err)
	}
	sms, err := stepup.NewSMSCheck(stepup.CodeConfig{Name: "SMSOTP", Store: store, Sender: stepup.NewOutbox(), Destinations: stepup.DestinationMap{}})
	if err != nil {
		panic(err)
	}
	checks = []auth.Check{login, sms}
	appAttest, err = attest.NewAppAttest(attest.AppAttestConfig{
		AppIDs: []string{"TEAMID1234.com.example.travel"}, Roots: []*x509.Certificate{attest.AppleAppAttestationRoot()},
		Environments: []attest.Environment{attest.Production}, Keys: attest.NewMemoryKeyStore(),
	})
	if err != nil {
		panic(err)
	}
}

func payHandler(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("paid")) }
