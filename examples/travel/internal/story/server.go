package story

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
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

// Backends hold the state that a deployment's instances share. The
// travel example keeps everything in memory by default; the multi-instance
// example (../../instances) passes Redis and PostgreSQL implementations.
type Backends struct {
	// KV holds auth sessions, check state, nonces, replay caches and
	// counters.
	KV kv.Store
	// Clients are the registered app installations.
	Clients auth.ClientStore
	// Devices are the device registry, its audit trail and the version
	// policies.
	Devices device.Store
	// Invalidator carries device-status and policy changes to every
	// instance's cache. Nil means one in-process invalidator shared by the
	// deployment's instances.
	Invalidator device.Invalidator
	// PINs are the watch PINs' hashes.
	PINs stepup.PINStore
	// Updates are the published Direct Update releases.
	Updates update.Store
}

// MemoryBackends returns in-memory backends, for one process.
func MemoryBackends() Backends {
	return Backends{
		KV:      kv.NewMemory(kv.MemoryConfig{}),
		Clients: auth.NewMemoryClients(),
		Devices: device.NewMemory(device.MemoryConfig{}),
		PINs:    stepup.NewMemoryPINStore(),
		Updates: update.NewMemoryStore(),
	}
}

// Options configure [Start].
type Options struct {
	// Addr is where clients connect: the API's listen address with one
	// instance, the round-robin balancer's with several. Empty means a
	// free loopback port.
	Addr string
	// Instances is how many API instances serve the deployment; 0 means 1.
	// Several instances listen on their own loopback ports behind a TCP
	// balancer at Addr that hands each new connection to the next
	// instance, and they share Backends.
	Instances int
	// Backends is the shared state. Zero fields take MemoryBackends'.
	Backends Backends
	// Logger receives the servers' internal errors. Nil discards them.
	Logger *slog.Logger
	// OnSMS, when set, sees every SMS the development outbox "sends".
	OnSMS func(stepup.Message)
	// Sink, when set, receives every analytics event of every instance
	// (tests search them for secrets).
	Sink analytics.Sink
}

// Deployment is the travel agency's API, protected by moat: one or more
// instances sharing backends, signing keys, the SMS outbox and the
// operator token.
type Deployment struct {
	// Issuer is the public base URL every instance answers for.
	Issuer string
	// Instances are the API servers, named a, b, c...
	Instances []*Instance
	// Outbox is the development SMS outbox (a real server sends SMS).
	Outbox *stepup.Outbox
	// OperatorToken guards the device operator API and the analytics.
	OperatorToken string
	// CA is the certificate of the throwaway CA that issued the API's
	// certificate.
	CA *x509.Certificate

	backends   Backends
	certs      *certs
	updateRoot []byte
	publisher  *update.Publisher
	front      net.Listener // the balancer, with several instances
}

// Instance is one API server of a deployment.
type Instance struct {
	// Name is a, b, c...; with several instances each answer carries it
	// in the Travel-Instance header.
	Name string
	// Addr is the instance's own listen address.
	Addr string
	// Stack is the instance's moat stack.
	Stack *moat.Stack

	pin      *stepup.PINCheck
	http     *http.Server
	listener net.Listener
}

// InstanceHeader names the instance that answered, with several.
const InstanceHeader = "Travel-Instance"

// shared is what every instance of a deployment gets.
type shared struct {
	d            *Deployment
	keys         *auth.KeySet
	updates      *update.ServerConfig
	analyticsKey []byte
	codeKey      []byte
	users        *stepup.MemoryDirectory
	hasher       *stepup.PasswordHasher
	phones       stepup.DestinationMap
	logger       *slog.Logger
	sink         analytics.Sink
}

// Start starts a deployment and serves it until Close.
func Start(opts Options) (*Deployment, error) {
	ctx := context.Background()
	if opts.Instances == 0 {
		opts.Instances = 1
	}
	if opts.Instances < 0 || opts.Instances > 26 {
		return nil, fmt.Errorf("travel: %d instances: want 1 to 26", opts.Instances)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := opts.Backends
	mem := MemoryBackends()
	if b.KV == nil {
		b.KV = mem.KV
	}
	if b.Clients == nil {
		b.Clients = mem.Clients
	}
	if b.Devices == nil {
		b.Devices = mem.Devices
	}
	if b.Invalidator == nil {
		b.Invalidator = new(device.LocalInvalidator)
	}
	if b.PINs == nil {
		b.PINs = mem.PINs
	}
	if b.Updates == nil {
		b.Updates = mem.Updates
	}
	c, err := newCerts()
	if err != nil {
		return nil, err
	}
	d := &Deployment{Outbox: stepup.NewOutbox(), CA: c.ca, backends: b, certs: c}
	d.Outbox.OnSend = opts.OnSMS
	sh := &shared{d: d, logger: opts.Logger, sink: opts.Sink, phones: stepup.DestinationMap{}}

	// The password directory is the host application's: here every
	// instance reads the same in-memory one.
	if sh.hasher, err = stepup.NewPasswordHasher(stepup.HasherConfig{}); err != nil {
		return nil, err
	}
	sh.users = stepup.NewMemoryDirectory(sh.hasher)
	for _, u := range users {
		if err := sh.users.AddUser(ctx, u.username, u.subject, u.password); err != nil {
			return nil, err
		}
		sh.phones[u.subject] = u.phone
	}
	// One signing key for the deployment: every instance must validate
	// every other's tokens. (In production it lives in a KMS or is sealed
	// with securestore.)
	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	if err != nil {
		return nil, err
	}
	if sh.keys, err = auth.NewKeySet(signer, 1); err != nil {
		return nil, err
	}
	if sh.updates, err = d.startUpdates(ctx); err != nil {
		return nil, err
	}
	if d.OperatorToken, err = randomToken(); err != nil {
		return nil, err
	}
	// The analytics' device-id key, and the key under which pending SMS
	// codes are hashed: every instance must hold the same, or a code sent
	// by one instance would not check on another (from a secret store in
	// production).
	sh.analyticsKey, sh.codeKey = make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(sh.analyticsKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(sh.codeKey); err != nil {
		return nil, err
	}

	front, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	d.Issuer = "https://" + front.Addr().String()
	if opts.Instances == 1 {
		in, err := sh.start(front, "")
		if err != nil {
			front.Close()
			return nil, err
		}
		d.Instances = append(d.Instances, in)
		return d, nil
	}
	d.front = front
	for i := range opts.Instances {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			var in *Instance
			if in, err = sh.start(ln, string(rune('a'+i))); err == nil {
				d.Instances = append(d.Instances, in)
				continue
			}
			ln.Close()
		}
		d.Close()
		return nil, err
	}
	go d.balance()
	return d, nil
}

// start serves one instance on ln. A named instance says its name in
// every answer.
func (sh *shared) start(ln net.Listener, name string) (*Instance, error) {
	d, store, logger := sh.d, sh.d.backends.KV, sh.logger
	in := &Instance{Name: name, Addr: ln.Addr().String(), listener: ln}

	// Security checks: the password at sign-in, an SMS code to pay, a PIN
	// on the watch.
	login, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: checkLogin, Users: sh.users, Hasher: sh.hasher, Store: store})
	if err != nil {
		return nil, err
	}
	sms, err := stepup.NewSMSCheck(stepup.CodeConfig{Name: checkSMS, Store: store, Sender: d.Outbox, Destinations: sh.phones, HashKey: sh.codeKey})
	if err != nil {
		return nil, err
	}
	in.pin, err = stepup.NewPINCheck(stepup.PINConfig{Name: checkPIN, PINs: d.backends.PINs, Hasher: sh.hasher, Store: store})
	if err != nil {
		return nil, err
	}
	// Development only: real apps attest with App Attest or Android Key
	// Attestation; the scripted app has no secure hardware.
	dev, err := attest.NewInsecureDevelopmentVerifier(attest.FormatInsecureDevelopment)
	if err != nil {
		return nil, err
	}
	in.Stack, err = moat.New(moat.Config{
		Auth: auth.Config{
			Issuer: d.Issuer, Store: store, Clients: d.backends.Clients, Keys: sh.keys,
			Checks: []auth.Check{login, sms, in.pin},
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
		Devices:            device.Config{Store: d.backends.Devices, Invalidator: d.backends.Invalidator, Logger: logger},
		Attestation:        attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{dev}}}},
		Updates:            sh.updates,
		Analytics:          &analytics.Config{DeviceKey: sh.analyticsKey, Sink: sh.sink, Logger: logger},
		AnalyticsAuthorize: operatorOnly(d.OperatorToken),
		Logger:             logger,
	})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	in.Stack.Mount(mux)
	read := in.Stack.MustProtect(moat.Route{Scopes: []string{scopeRead}})
	pay := in.Stack.MustProtect(moat.Route{Scopes: []string{scopePay}, StepUp: &stepup.Policy{
		ACRValues: []string{stepup.ACRMultiFactor}, AMR: []string{stepup.AMRSMS}, MaxAge: 5 * time.Minute,
	}})
	mux.Handle("GET /reservations/{id}", read(http.HandlerFunc(getReservation)))
	mux.Handle("POST /reservations/{id}/pay", pay(http.HandlerFunc(payReservation)))

	// The operator API, for the people who answer "my phone was stolen".
	authz, err := device.NewTokenAuthorizer(device.OperatorToken{Operator: "support-desk", Token: d.OperatorToken})
	if err != nil {
		in.Stack.Close()
		return nil, err
	}
	ops, err := device.NewOperatorHandler(in.Stack.Devices(), device.OperatorConfig{Authorizer: authz})
	if err != nil {
		in.Stack.Close()
		return nil, err
	}
	mux.Handle(operatorPath+"/", http.StripPrefix(operatorPath, ops))

	var h http.Handler = mux
	if name != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(InstanceHeader, name)
			mux.ServeHTTP(w, r)
		})
	}
	in.http = &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{d.certs.server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		if err := in.http.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("travel: serving", "instance", name, "err", err)
		}
	}()
	return in, nil
}

// balance hands each connection to the balancer to the next instance, in
// turn (TLS passes through: the instances hold the pinned certificate).
func (d *Deployment) balance() {
	for next := 0; ; next++ {
		conn, err := d.front.Accept()
		if err != nil {
			return
		}
		go pipe(conn, d.Instances[next%len(d.Instances)].Addr)
	}
}

type instanceKey struct{}

// At returns a context whose requests go to instance in, not through the
// balancer (a test reaching one instance directly). With one instance it
// changes nothing.
func At(ctx context.Context, in *Instance) context.Context {
	return context.WithValue(ctx, instanceKey{}, in)
}

// dialInstance dials the instance that the request's context names (see
// [At]), or else addr.
func dialInstance(ctx context.Context, network, addr string) (net.Conn, error) {
	if in, _ := ctx.Value(instanceKey{}).(*Instance); in != nil && in.Name != "" {
		addr = in.Addr
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func pipe(conn net.Conn, addr string) {
	defer conn.Close()
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, conn)
	go cp(conn, up)
	<-done
	<-done
}

// startUpdates makes the Direct Update trust root (one key here; several
// and a threshold in production), publishes the web resources as bundle 1
// and returns the update server's configuration.
func (d *Deployment) startUpdates(ctx context.Context) (*update.ServerConfig, error) {
	key, err := update.GenerateKey(update.EdDSA)
	if err != nil {
		return nil, err
	}
	pub, err := update.PublicKeyOf(key)
	if err != nil {
		return nil, err
	}
	d.updateRoot, err = update.SignRoot(update.Root{Version: 1, Expires: time.Now().AddDate(1, 0, 0),
		RootKeys: []jose.JSONWebKey{pub}, RootThreshold: 1, ManifestKeys: []jose.JSONWebKey{pub}, ManifestThreshold: 1}, key)
	if err != nil {
		return nil, err
	}
	store := d.backends.Updates
	if d.publisher, err = update.NewPublisher(update.PublisherConfig{Store: store, Keys: []crypto.Signer{key}}); err != nil {
		return nil, err
	}
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, err
	}
	if err := d.publish(ctx, web, 1, false); err != nil {
		return nil, err
	}
	return &update.ServerConfig{Store: store, Roots: [][]byte{d.updateRoot}, CacheTTL: -1}, nil
}

// publish publishes web as bundle version for the iOS app 1.x and 2.x.
func (d *Deployment) publish(ctx context.Context, web fs.FS, version uint64, mandatory bool) error {
	_, err := d.publisher.Publish(ctx, web, update.ReleaseSpec{App: appID, Platform: "ios", AppVersions: ">=1.0 <3",
		Version: version, Mandatory: mandatory, Expires: time.Now().Add(30 * 24 * time.Hour)})
	return err
}

// publishFix publishes bundle 2: the booking view with a security fix,
// as a mandatory update.
func (d *Deployment) publishFix(ctx context.Context) error {
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
	return d.publish(ctx, fixed, 2, true)
}

// Close stops the balancer and every instance.
func (d *Deployment) Close() {
	if d.front != nil {
		_ = d.front.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, in := range d.Instances {
		_ = in.http.Shutdown(ctx)
		_ = in.Stack.Close()
	}
}

// Flush waits until every instance's analytics recorder has aggregated
// what it recorded.
func (d *Deployment) Flush(ctx context.Context) error {
	for _, in := range d.Instances {
		if err := in.Stack.Analytics().Flush(ctx); err != nil {
			return err
		}
	}
	return nil
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
func (d *Deployment) setWatchPIN(ctx context.Context, deviceID, subject string) error {
	if err := d.Instances[0].pin.SetPIN(ctx, deviceID, subject, watchPIN, time.Now()); err != nil {
		return fmt.Errorf("setting the watch PIN: %w", err)
	}
	return nil
}
