package stepup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/securestore"
	"github.com/moatsec/moat/stepup"
)

// A password check identifies the user; the auth framework sends its
// challenge, then passes the client's answer back.
func ExampleNewPasswordCheck() {
	ctx := context.Background()
	hasher, err := stepup.NewPasswordHasher(stepup.HasherConfig{}) // OWASP's Argon2id parameters
	if err != nil {
		panic(err)
	}
	users := stepup.NewMemoryDirectory(hasher)
	if err := users.AddUser(ctx, "alice", "user-42", "correct horse battery staple"); err != nil {
		panic(err)
	}
	check, err := stepup.NewPasswordCheck(stepup.PasswordConfig{
		Name: "UserLogin", Users: users, Hasher: hasher, Store: kv.NewMemory(kv.MemoryConfig{}),
	})
	if err != nil {
		panic(err)
	}

	r, _ := check.Authorize(ctx, &auth.CheckRequest{SessionID: "s1", Now: time.Now()})
	ch, _ := json.Marshal(r.Challenge)
	fmt.Println(r.Status, string(ch))

	r, _ = check.Authorize(ctx, &auth.CheckRequest{SessionID: "s1", Now: time.Now(),
		Answer: json.RawMessage(`{"username":"alice","password":"correct horse battery staple"}`)})
	fmt.Println(r.Status, r.Subject, r.AMR, r.ValidFor)
	// Output:
	// challenge {"fields":["username","password"]}
	// success user-42 [pwd] 1h0m0s
}

// An SMS code check needs the user an earlier check identified. The
// Outbox stands in for an SMS gateway in tests and development.
func ExampleNewSMSCheck() {
	ctx := context.Background()
	outbox := stepup.NewOutbox()
	check, err := stepup.NewSMSCheck(stepup.CodeConfig{
		Name:         "SMSOTP",
		Store:        kv.NewMemory(kv.MemoryConfig{}),
		Sender:       outbox,
		Destinations: stepup.DestinationMap{"user-42": "+33612345678"},
	})
	if err != nil {
		panic(err)
	}
	req := &auth.CheckRequest{Subject: "user-42", SessionID: "s1", Now: time.Now()}
	r, _ := check.Authorize(ctx, req)
	ch, _ := json.Marshal(r.Challenge)
	fmt.Println(r.Status, string(ch))

	req.Answer, _ = json.Marshal(stepup.CodeAnswer{Code: outbox.LastCode("+33612345678")})
	r, _ = check.Authorize(ctx, req)
	fmt.Println(r.Status, r.AMR)
	// Output:
	// challenge {"channel":"sms","to":"+*********78","length":6,"expires_in":300,"resend_in":30}
	// success [sms]
}

// A payment route asks for an SMS code within the last five minutes.
// Tokens without one get an RFC 9470 challenge.
func ExampleRequire() {
	pay := stepup.MustRequire(stepup.Policy{
		ACRValues: []string{"urn:travel:pay"},
		AMR:       []string{stepup.AMRSMS},
		MaxAge:    5 * time.Minute,
	})
	h := pay(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "paid") }))

	r := httptest.NewRequest(http.MethodPost, "/reservations/7/pay", nil)
	r.Header.Set("Authorization", "Bearer token")
	r = r.WithContext(auth.ContextWithPrincipal(r.Context(), &auth.Principal{
		Subject: "user-42", ACR: stepup.ACROneFactor, AMR: []string{"pwd"}, AuthTime: time.Now(),
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	// Output:
	// 401
	// Bearer realm="moat", error="insufficient_user_authentication", error_description="a different authentication level is required", acr_values="urn:travel:pay", max_age="300"
}

// RFC 6238 Appendix B: the SHA-1 seed at T = 59 s.
func ExampleOTPKey_TOTP() {
	k := stepup.OTPKey{Secret: []byte("12345678901234567890"), Digits: 8}
	code, _ := k.TOTP(time.Unix(59, 0))
	fmt.Println(code)
	step, ok := k.VerifyTOTP(code, time.Unix(61, 0), stepup.DefaultSkew, -1)
	fmt.Println(step, ok)
	// Output:
	// 94287082
	// 1 true
}

// Enrollment shows the user an otpauth URI and its QR code once; the
// first code confirms it. Seeds are sealed at rest with a
// securestore.Sealer, whose keys the operator keeps (made with
// "moat store keygen --id 1", read with securestore.ParseSealerKeys from a
// secret store; generated here).
func ExampleTOTPCheck_Enroll() {
	ctx := context.Background()
	sealer, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{securestore.GenerateSealerKey(1)}})
	if err != nil {
		panic(err)
	}
	check, err := stepup.NewTOTPCheck(stepup.TOTPConfig{
		Name: "TOTP", Issuer: "Travel Co", Enrollments: stepup.NewMemoryOTPStore(), Sealer: sealer,
		Store: kv.NewMemory(kv.MemoryConfig{}),
	})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	setup, err := check.Enroll(ctx, "user-42", "alice@example.com", now)
	if err != nil {
		panic(err)
	}
	fmt.Println(setup.URI[:46], len(setup.QRCode) > 0)

	secret, _ := stepup.ParseSecret(setup.Secret)
	code, _ := stepup.OTPKey{Secret: secret}.TOTP(now) // what the app shows
	fmt.Println(check.Confirm(ctx, "user-42", code, now))
	// Output:
	// otpauth://totp/Travel%20Co:alice@example.com?a true
	// <nil>
}
