package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/moatsec/moat"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
)

// The travel agency's users. Passwords live only as Argon2id hashes in
// the directory; the story's scripted app knows them, as a user would.
var users = []struct {
	username, subject, password, phone string
}{
	{"alice", "user-alice", "correct horse battery staple", "+15550100"},
	{"bob", "user-bob", "tr0ub4dor&3 but longer", "+15550111"},
}

const (
	appID        = "com.example.travel"
	watchPIN     = "4821"
	scopeRead    = "reservations"
	scopePay     = "payments"
	checkLogin   = "UserLogin"
	checkSMS     = "SMSOTP"
	checkPIN     = "WatchPIN"
	operatorPath = "/admin/device"
)

// travelServer is the travel agency's API, protected by moat.
type travelServer struct {
	issuer        string
	stack         *moat.Stack
	outbox        *stepup.Outbox
	pin           *stepup.PINCheck
	clients       *auth.MemoryClients
	operatorToken string
	http          *http.Server
	listener      net.Listener
}

// startServer listens on addr (HTTPS with the example's certificate) and
// serves the API.
// onSMS, when set, sees every SMS the development outbox "sends".
func startServer(addr string, c *certs, logger *slog.Logger, onSMS func(stepup.Message)) (*travelServer, error) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &travelServer{issuer: "https://" + ln.Addr().String(), listener: ln, outbox: stepup.NewOutbox(), clients: auth.NewMemoryClients()}
	s.outbox.OnSend = onSMS
	fail := func(err error) (*travelServer, error) {
		ln.Close()
		return nil, err
	}
	store := kv.NewMemory(kv.MemoryConfig{})

	// Security checks: the password at sign-in, an SMS code to pay, a PIN
	// on the watch.
	hasher, err := stepup.NewPasswordHasher(stepup.HasherConfig{})
	if err != nil {
		return fail(err)
	}
	dir := stepup.NewMemoryDirectory(hasher)
	phones := stepup.DestinationMap{}
	for _, u := range users {
		if err := dir.AddUser(ctx, u.username, u.subject, u.password); err != nil {
			return fail(err)
		}
		phones[u.subject] = u.phone
	}
	login, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: checkLogin, Users: dir, Hasher: hasher, Store: store})
	if err != nil {
		return fail(err)
	}
	sms, err := stepup.NewSMSCheck(stepup.CodeConfig{Name: checkSMS, Store: store, Sender: s.outbox, Destinations: phones})
	if err != nil {
		return fail(err)
	}
	s.pin, err = stepup.NewPINCheck(stepup.PINConfig{Name: checkPIN, PINs: stepup.NewMemoryPINStore(), Hasher: hasher, Store: store})
	if err != nil {
		return fail(err)
	}

	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	if err != nil {
		return fail(err)
	}
	keys, err := auth.NewKeySet(signer, 1)
	if err != nil {
		return fail(err)
	}
	// Development only: real apps attest with App Attest or Android Key
	// Attestation; the scripted app has no secure hardware.
	dev, err := attest.NewInsecureDevelopmentVerifier(attest.FormatInsecureDevelopment)
	if err != nil {
		return fail(err)
	}
	s.stack, err = moat.New(moat.Config{
		Auth: auth.Config{
			Issuer: s.issuer, Store: store, Clients: s.clients, Keys: keys,
			Checks: []auth.Check{login, sms, s.pin},
			Scopes: []auth.ScopeRule{
				{Scope: scopeRead, Checks: []string{checkLogin}},
				{Scope: scopePay, Checks: []string{checkLogin}},
				{Scope: scopeRead, Channel: "watch", Checks: []string{checkPIN}},
			},
			ACRs: []auth.ACR{
				{Value: stepup.ACROneFactor, Checks: []string{checkLogin}},
				{Value: stepup.ACRMultiFactor, Checks: []string{checkLogin, checkSMS}},
			},
			Logger: logger,
		},
		Devices:     device.Config{Store: device.NewMemory(device.MemoryConfig{}), Logger: logger},
		Attestation: attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{dev}}}},
		Logger:      logger,
	})
	if err != nil {
		return fail(err)
	}

	mux := http.NewServeMux()
	s.stack.Mount(mux)
	read := s.stack.MustProtect(moat.Route{Scopes: []string{scopeRead}})
	pay := s.stack.MustProtect(moat.Route{Scopes: []string{scopePay}, StepUp: &stepup.Policy{
		ACRValues: []string{stepup.ACRMultiFactor}, AMR: []string{stepup.AMRSMS}, MaxAge: 5 * time.Minute,
	}})
	mux.Handle("GET /reservations/{id}", read(http.HandlerFunc(getReservation)))
	mux.Handle("POST /reservations/{id}/pay", pay(http.HandlerFunc(payReservation)))

	// The operator API, for the people who answer "my phone was stolen".
	s.operatorToken, err = randomToken()
	if err != nil {
		return fail(err)
	}
	authz, err := device.NewTokenAuthorizer(device.OperatorToken{Operator: "support-desk", Token: s.operatorToken})
	if err != nil {
		return fail(err)
	}
	ops, err := device.NewOperatorHandler(s.stack.Devices(), device.OperatorConfig{Authorizer: authz})
	if err != nil {
		return fail(err)
	}
	mux.Handle(operatorPath+"/", http.StripPrefix(operatorPath, ops))

	s.http = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		if err := s.http.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("travel: serving", "err", err)
		}
	}()
	return s, nil
}

func (s *travelServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	_ = s.stack.Close()
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func getReservation(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	writeJSON(w, map[string]any{
		"id": r.PathValue("id"), "traveller": p.Subject, "hotel": "Hotel Miramar, Lisbon",
		"nights": 3, "total": "420.00 EUR",
	})
}

func payReservation(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	writeJSON(w, map[string]any{"id": r.PathValue("id"), "paid": true, "by": p.Subject, "amr": p.AMR})
}

// setWatchPIN enrols a user's PIN on the watch (done from the phone app,
// after the user signed in there).
func (s *travelServer) setWatchPIN(ctx context.Context, deviceID, subject string) error {
	if err := s.pin.SetPIN(ctx, deviceID, subject, watchPIN, time.Now()); err != nil {
		return fmt.Errorf("setting the watch PIN: %w", err)
	}
	return nil
}
