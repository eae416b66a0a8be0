package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat"
	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/update"
)

// webFiles are the app's web resources, shipped as Direct Update bundles.
//
//go:embed web
var webFiles embed.FS

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
	updateRoot    []byte
	publisher     *update.Publisher
	http          *http.Server
	listener      net.Listener
}

// serverOptions configures startServer.
type serverOptions struct {
	addr   string // listen address
	certs  *certs
	logger *slog.Logger
	// onSMS, when set, sees every SMS the development outbox "sends".
	onSMS func(stepup.Message)
	// sink, when set, receives every analytics event (tests search them
	// for secrets).
	sink analytics.Sink
}

// startServer listens on opts.addr (HTTPS with the example's certificate)
// and serves the API.
func startServer(opts serverOptions) (*travelServer, error) {
	ctx := context.Background()
	c, logger := opts.certs, opts.logger
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return nil, err
	}
	s := &travelServer{issuer: "https://" + ln.Addr().String(), listener: ln, outbox: stepup.NewOutbox(), clients: auth.NewMemoryClients()}
	s.outbox.OnSend = opts.onSMS
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
	updates, err := s.startUpdates(ctx)
	if err != nil {
		return fail(err)
	}
	// The operator token guards the device operator API and the analytics.
	s.operatorToken, err = randomToken()
	if err != nil {
		return fail(err)
	}
	analyticsKey := make([]byte, 32)
	if _, err := rand.Read(analyticsKey); err != nil {
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
		Devices:            device.Config{Store: device.NewMemory(device.MemoryConfig{}), Logger: logger},
		Attestation:        attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{dev}}}},
		Updates:            updates,
		Analytics:          &analytics.Config{DeviceKey: analyticsKey, Sink: opts.sink, Logger: logger},
		AnalyticsAuthorize: operatorOnly(s.operatorToken),
		Logger:             logger,
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

// startUpdates makes the Direct Update trust root (one key here; several
// and a threshold in production), publishes the web resources as bundle 1
// and returns the update server's configuration.
func (s *travelServer) startUpdates(ctx context.Context) (*update.ServerConfig, error) {
	key, err := update.GenerateKey(update.EdDSA)
	if err != nil {
		return nil, err
	}
	pub, err := update.PublicKeyOf(key)
	if err != nil {
		return nil, err
	}
	s.updateRoot, err = update.SignRoot(update.Root{Version: 1, Expires: time.Now().AddDate(1, 0, 0),
		RootKeys: []jose.JSONWebKey{pub}, RootThreshold: 1, ManifestKeys: []jose.JSONWebKey{pub}, ManifestThreshold: 1}, key)
	if err != nil {
		return nil, err
	}
	store := update.NewMemoryStore()
	if s.publisher, err = update.NewPublisher(update.PublisherConfig{Store: store, Keys: []crypto.Signer{key}}); err != nil {
		return nil, err
	}
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, err
	}
	if err := s.publish(ctx, web, 1, false); err != nil {
		return nil, err
	}
	return &update.ServerConfig{Store: store, Roots: [][]byte{s.updateRoot}, CacheTTL: -1}, nil
}

// publish publishes web as bundle version for the iOS app 1.x and 2.x.
func (s *travelServer) publish(ctx context.Context, web fs.FS, version uint64, mandatory bool) error {
	_, err := s.publisher.Publish(ctx, web, update.ReleaseSpec{App: appID, Platform: "ios", AppVersions: ">=1.0 <3",
		Version: version, Mandatory: mandatory, Expires: time.Now().Add(30 * 24 * time.Hour)})
	return err
}

// publishFix publishes bundle 2: the booking view with a security fix,
// as a mandatory update.
func (s *travelServer) publishFix(ctx context.Context) error {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return err
	}
	fixed := fstest.MapFS{}
	err = fs.WalkDir(web, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, path)
		if err != nil {
			return err
		}
		if path == "booking.js" {
			b = append(b, []byte("// version 2: escape trip names before showing them (security fix)\n")...)
		}
		fixed[path] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		return err
	}
	return s.publish(ctx, fixed, 2, true)
}

func (s *travelServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	_ = s.stack.Close()
}

// operatorOnly lets through requests that carry the operator token, as a
// Bearer token (scripts) or as the password of HTTP Basic authentication
// (a browser opening the dashboard).
func operatorOnly(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				_, got, _ = r.BasicAuth()
			}
			sum := sha256.Sum256([]byte(got))
			if got == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="moat operators"`)
				http.Error(w, "operators only", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
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
