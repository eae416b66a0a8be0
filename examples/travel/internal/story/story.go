package story

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/pinning"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/update"
)

// story is the scripted app side: several app installations and the
// support desk, talking to the server over pinned HTTPS.
type story struct {
	dir     string // the apps' installation directories
	d       *Deployment
	certs   *certs
	t       *transcript
	http    *http.Client // pinned, with the transcript
	pins    *pinning.Set
	reports *pinning.ReportSender
}

func newStory(d *Deployment, out io.Writer, dir string, secret func(string)) (*story, error) {
	c := d.certs
	rotate := len(d.Instances) > 1
	// Pin the server's key, with a backup key kept offline for the day the
	// server's key must change.
	_, backup, err := pinning.GenerateBackup()
	if err != nil {
		return nil, err
	}
	set, err := pinning.NewSet(pinning.SetConfig{Rules: []pinning.Rule{
		{Pattern: "127.0.0.1", Pins: []pinning.Pin{pinning.PinOf(c.leaf), backup}},
	}})
	if err != nil {
		return nil, err
	}
	// Violations are reported to the server (and counted in its analytics).
	// The sender uses its own client: a pinned one could not report a
	// violation on its own host.
	reports, err := pinning.NewReportSender(pinning.ReportSenderConfig{
		URL:    d.Issuer + "/moat/pin-reports",
		Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pool}, DisableKeepAlives: rotate}, Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	v, err := pinning.NewVerifier(pinning.Config{Pins: set, Reporter: reports})
	if err != nil {
		return nil, err
	}
	// With several instances, every request opens a new HTTP/1.1
	// connection (HTTP/2 would share one among concurrent requests), so
	// the balancer hands the calls to the instances in turn.
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pool}, ForceAttemptHTTP2: !rotate, DisableKeepAlives: rotate, DialContext: dialInstance}
	pinned, err := v.Transport(base)
	if err != nil {
		return nil, err
	}
	t := &transcript{w: out}
	return &story{dir: dir, d: d, certs: c, t: t, pins: set, reports: reports,
		http: &http.Client{Transport: &transport{base: pinned, t: t, secret: secret}, Timeout: 10 * time.Second}}, nil
}

func (s *story) close() { _ = s.reports.Close() }

// app is one installation of the travel app.
type app struct {
	*client.Client
	name    string
	updates *update.Client // nil on the watch, whose app has no web resources
}

type appSpec struct {
	name, username, deviceID, platform, channel, version string
	// wrongSMS makes the user type wrong SMS codes.
	wrongSMS bool
	// sms, when set, answers SMS challenges instead.
	sms func(context.Context) (string, error)
}

func (s *story) newApp(ctx context.Context, spec appSpec) (*app, error) {
	var password, phone string
	for _, u := range users {
		if u.username == spec.username {
			password, phone = u.password, u.phone
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var updates *update.Client
	if spec.platform == "ios" {
		updates, err = update.NewClient(update.ClientConfig{
			BaseURL: s.d.Issuer + "/update", App: appID, Platform: spec.platform, AppVersion: spec.version,
			Root: s.d.updateRoot, Dir: filepath.Join(s.dir, spec.deviceID), HTTPClient: s.http,
		})
		if err != nil {
			return nil, err
		}
	}
	c, err := client.New(ctx, client.Config{
		Issuer: s.d.Issuer, HTTPClient: s.http, Key: key, Updates: updates,
		AppID: appID, AppVersion: spec.version, Platform: spec.platform, Channel: spec.channel, DeviceID: spec.deviceID,
		Header: http.Header{"Accept-Language": {"en"}},
		Attest: func(_ context.Context, nonce, _ string) (json.RawMessage, error) {
			return attest.InsecureDevelopmentEvidence(key, nonce)
		},
		Handlers: map[string]client.ChallengeHandler{
			checkLogin: func(context.Context, json.RawMessage) (any, error) {
				return stepup.PasswordAnswer{Username: spec.username, Password: password}, nil
			},
			checkSMS: func(ctx context.Context, _ json.RawMessage) (any, error) {
				if spec.sms != nil {
					code, err := spec.sms(ctx)
					return stepup.CodeAnswer{Code: code}, err
				}
				if spec.wrongSMS {
					return stepup.CodeAnswer{Code: "000000"}, nil
				}
				return stepup.CodeAnswer{Code: s.d.Outbox.LastCode(phone)}, nil
			},
			checkPIN: func(context.Context, json.RawMessage) (any, error) {
				return stepup.PINAnswer{PIN: watchPIN}, nil
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return &app{Client: c, name: spec.name, updates: updates}, nil
}

func (s *story) call(ctx context.Context, a *app, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.d.Issuer+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// expectStatus calls path and wants status.
func (s *story) expectStatus(ctx context.Context, a *app, method, path string, status int) (*http.Response, error) {
	resp, err := s.call(ctx, a, method, path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != status {
		return nil, fmt.Errorf("%s %s: got %d, want %d", method, path, resp.StatusCode, status)
	}
	return resp, nil
}

// expectError wants err to match target.
func expectError(what string, err, target error) error {
	if err == nil {
		return fmt.Errorf("%s: succeeded, want %v", what, target)
	}
	if !errors.Is(err, target) {
		return fmt.Errorf("%s: got %v, want %v", what, err, target)
	}
	return nil
}

// operator sends one request to the device operator API.
func (s *story) operator(ctx context.Context, method, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.d.Issuer+operatorPath+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.d.OperatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("operator %s %s: %d %s", method, path, resp.StatusCode, msg)
	}
	return nil
}

// run plays the whole story. It returns an error at the first step whose
// outcome is not the expected one.
func (s *story) run(ctx context.Context) error {
	t := s.t
	fmt.Fprintf(t.w, "moat travel example: server at %s, pinned HTTPS (sha256 pin of its key plus a backup pin)\n", s.d.Issuer)

	t.step("1. alice installs the app on her phone and registers it")
	alice, err := s.newApp(ctx, appSpec{name: "alice's phone", username: "alice", deviceID: "phone-alice", platform: "ios", channel: "phone", version: "1.10.0"})
	if err != nil {
		return err
	}
	if err := alice.Register(ctx); err != nil {
		return fmt.Errorf("registering alice's phone: %w", err)
	}
	cl, err := s.d.backends.Clients.Client(ctx, alice.ClientID())
	if err != nil {
		return err
	}
	if cl.Attestation["verdict"] != string(attest.VerdictInsecure) {
		return fmt.Errorf("attestation verdict %q, want the development verifier's", cl.Attestation["verdict"])
	}
	t.note("registered with the INSECURE development verifier (verdict %q): no proof the app is genuine; production uses App Attest or Android Key Attestation", cl.Attestation["verdict"])

	t.step("2. alice signs in: the password only")
	if err := alice.Authorize(ctx, scopeRead, scopePay); err != nil {
		return fmt.Errorf("alice signing in: %w", err)
	}

	t.step("3. alice reads her reservation")
	if _, err := s.expectStatus(ctx, alice, "GET", "/reservations/42", http.StatusOK); err != nil {
		return err
	}

	t.step("4. alice pays: the API asks for an SMS code (step-up), read from the example's outbox")
	mark := t.mark()
	if _, err := s.expectStatus(ctx, alice, "POST", "/reservations/42/pay", http.StatusOK); err != nil {
		return err
	}
	if !t.sawCode(mark, "insufficient_user_authentication") {
		return errors.New("paying did not ask for a step-up")
	}
	t.note("SMS sent to %s; the password was not asked again", users[0].phone)

	t.step("5. bob signs in on his phone and, at payment, types wrong SMS codes until the check blocks")
	bob, err := s.newApp(ctx, appSpec{name: "bob's phone", username: "bob", deviceID: "phone-bob", platform: "ios", channel: "phone", version: "1.10.0", wrongSMS: true})
	if err != nil {
		return err
	}
	if err := bob.Register(ctx); err != nil {
		return fmt.Errorf("registering bob's phone: %w", err)
	}
	if err := bob.Authorize(ctx, scopeRead, scopePay); err != nil {
		return fmt.Errorf("bob signing in: %w", err)
	}
	_, err = s.call(ctx, bob, "POST", "/reservations/7/pay")
	if err := expectError("bob paying with wrong codes", err, client.ErrCheckBlocked); err != nil {
		return err
	}
	t.step("6. bob types the right code while the check is blocked: refused")
	right := s.d.Outbox.LastCode(users[1].phone)
	err = bob.Answer(ctx, map[string]any{checkSMS: stepup.CodeAnswer{Code: right}})
	if err := expectError("the right code while blocked", err, client.ErrCheckBlocked); err != nil {
		return err
	}
	var oe *client.OAuthError
	if errors.As(err, &oe) {
		t.note("%s is blocked until %s", oe.Check(), oe.BlockedUntil().Format(time.RFC3339))
	}

	t.step("7. alice's watch signs in with a PIN (no keyboard for a password)")
	if err := s.d.setWatchPIN(ctx, "watch-alice", "user-alice"); err != nil {
		return err
	}
	watch, err := s.newApp(ctx, appSpec{name: "alice's watch", username: "alice", deviceID: "watch-alice", platform: "watchos", channel: "watch", version: "1.10.0"})
	if err != nil {
		return err
	}
	if err := watch.Register(ctx); err != nil {
		return fmt.Errorf("registering the watch: %w", err)
	}
	if err := watch.Authorize(ctx, scopeRead); err != nil {
		return fmt.Errorf("the watch signing in: %w", err)
	}
	if _, err := s.expectStatus(ctx, watch, "GET", "/reservations/42", http.StatusOK); err != nil {
		return err
	}

	t.step("8. alice reports her phone stolen; the support desk marks it so")
	if err := s.operator(ctx, "PUT", "/devices/phone-alice/status", map[string]string{"status": "stolen", "reason": "reported stolen by alice"}); err != nil {
		return err
	}
	t.step("9. the stolen phone is refused on its very next call")
	_, err = s.call(ctx, alice, "GET", "/reservations/42")
	if err := expectError("the stolen phone", err, client.ErrDeviceBlocked); err != nil {
		return err
	}
	if _, err := s.expectStatus(ctx, watch, "GET", "/reservations/42", http.StatusOK); err != nil {
		return fmt.Errorf("the watch after the phone was blocked: %w", err)
	}

	t.step("10. a security fix ships in 2.0.0: the operator first notifies older versions")
	policy := map[string]any{
		"min_version": "2.0.0", "action": "notify", "reason": "CVE in the booking view",
		"message":      "Version 2.0 fixes a security issue. Please update.",
		"download_url": "https://apps.example.com/travel",
	}
	if err := s.operator(ctx, "PUT", "/policies/"+appID+"/ios", policy); err != nil {
		return err
	}
	resp, err := s.expectStatus(ctx, bob, "GET", "/reservations/42", http.StatusOK)
	if err != nil {
		return err
	}
	if resp.Header.Get("Moat-App-Version-Notice") == "" {
		return errors.New("no version notice on the first call after notify")
	}
	resp, err = s.expectStatus(ctx, bob, "GET", "/reservations/42", http.StatusOK)
	if err != nil {
		return err
	}
	if resp.Header.Get("Moat-App-Version-Notice") != "" {
		return errors.New("the notice was shown twice to one client")
	}
	t.note("the notice is shown once per client")

	t.step("11. then blocks them: a fresh install of the old version is refused")
	policy["action"] = "block"
	if err := s.operator(ctx, "PUT", "/policies/"+appID+"/ios", policy); err != nil {
		return err
	}
	fresh, err := s.newApp(ctx, appSpec{name: "carol's tablet", username: "alice", deviceID: "tablet-carol", platform: "ios", channel: "tablet", version: "1.10.0"})
	if err != nil {
		return err
	}
	err = fresh.Register(ctx)
	if err := expectError("registering version 1.10.0", err, client.ErrAppVersionBlocked); err != nil {
		return err
	}
	if errors.As(err, &oe) {
		t.note("message: %q, download: %s", oe.Message(), oe.DownloadURL())
	}
	_, err = s.call(ctx, bob, "GET", "/reservations/42")
	if err := expectError("bob's phone on 1.10.0", err, client.ErrAppVersionBlocked); err != nil {
		return err
	}

	t.step("12. alice's new phone runs app 2.0.0: it registers, signs in and installs the current web resources")
	phone2, err := s.newApp(ctx, appSpec{name: "alice's new phone", username: "alice", deviceID: "phone2-alice", platform: "ios", channel: "phone", version: "2.0.0"})
	if err != nil {
		return err
	}
	if err := phone2.Register(ctx); err != nil {
		return fmt.Errorf("registering alice's new phone: %w", err)
	}
	if err := phone2.Authorize(ctx, scopeRead, scopePay); err != nil {
		return fmt.Errorf("alice signing in on her new phone: %w", err)
	}
	m, err := phone2.updates.Update(ctx)
	if err != nil {
		return fmt.Errorf("installing the web resources: %w", err)
	}
	if m == nil || m.BundleVersion != 1 {
		return errors.New("bundle 1 was not installed")
	}
	t.note("installed web bundle %d (%d files, signatures and every file's SHA-256 verified; the 404 for roots/2.json says no newer trust root was published)", m.BundleVersion, len(m.Files))

	t.step("13. a security fix to the booking view ships as mandatory bundle 2: calls are refused until the app installs it")
	if err := s.d.publishFix(ctx); err != nil {
		return err
	}
	mark = t.mark()
	if _, err := s.expectStatus(ctx, phone2, "GET", "/reservations/42", http.StatusOK); err != nil {
		return err
	}
	if !t.sawCode(mark, "update_required") {
		return errors.New("the call was not refused with update_required before the update")
	}
	if v := phone2.updates.InstalledVersion(); v != 2 {
		return fmt.Errorf("installed bundle %d, want 2", v)
	}
	t.note("bundle 2 installed atomically (bundle 1 kept for rollback)")

	t.step("14. pinning: a second server with a certificate from the same trusted CA, but not pinned, is refused")
	if err := s.unpinnedServerRefused(ctx); err != nil {
		return err
	}
	if err := s.waitReportSent(ctx); err != nil {
		return err
	}
	t.note("the violation was reported to %s/moat/pin-reports", s.d.Issuer)

	t.step("15. the operator reads the analytics: calls by channel, challenges, refusals")
	if err := s.d.Flush(ctx); err != nil {
		return err
	}
	// Each instance aggregates the calls it served: with several, the
	// operator reads each one's.
	var total analytics.Brief
	for _, in := range s.d.Instances {
		var calls analytics.Summary
		var sec analytics.SecurityReport
		if err := s.operatorGet(ctx, in, "/moat/analytics/api/summary?since=-1h&group_by=channel", &calls); err != nil {
			return err
		}
		if err := s.operatorGet(ctx, in, "/moat/analytics/api/security?since=-1h", &sec); err != nil {
			return err
		}
		brief := analytics.NewBrief(&calls, &sec)
		if in.Name != "" {
			t.note("instance %s:", in.Name)
		}
		for _, line := range strings.Split(strings.TrimSpace(brief.String()), "\n") {
			t.note("%s", line)
		}
		total.Calls += brief.Calls
		total.ChallengesIssued += brief.ChallengesIssued
		total.Refusals += brief.Refusals
	}
	if total.Calls == 0 || total.ChallengesIssued == 0 || total.Refusals == 0 {
		return fmt.Errorf("analytics saw too little: %d calls, %d challenges, %d refusals", total.Calls, total.ChallengesIssued, total.Refusals)
	}

	fmt.Fprintf(t.w, "\nthe story went as expected: %d HTTP exchanges\n", t.lines)
	return nil
}

// waitReportSent waits for the pin violation report to be delivered.
func (s *story) waitReportSent(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for s.reports.Stats().Sent == 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the pin violation report was not delivered: %+v", s.reports.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// operatorGet reads a JSON answer from an operator-only endpoint of one
// instance.
func (s *story) operatorGet(ctx context.Context, in *Instance, path string, v any) error {
	req, err := http.NewRequestWithContext(At(ctx, in), "GET", s.d.Issuer+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.d.OperatorToken)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// unpinnedServerRefused starts a server whose certificate chains to the
// same CA (so ordinary TLS verification passes) with another key, and
// checks that the pinned client refuses it.
func (s *story) unpinnedServerRefused(ctx context.Context) error {
	cert, _, err := s.certs.issue("impostor", 99)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello")) }),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+ln.Addr().String()+"/reservations/42", nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err == nil {
		resp.Body.Close()
		return errors.New("the unpinned server was accepted")
	}
	if !errors.Is(err, pinning.ErrPinMismatch) {
		return fmt.Errorf("unpinned server: got %v, want a pin mismatch", err)
	}
	return nil
}

// PlayOptions are hooks for tests.
type PlayOptions struct {
	// Secret, when set, is told every secret the story's HTTP exchanges
	// carry (tokens, proofs, codes, sessions), so tests can search for
	// them.
	Secret func(string)
}

// Play runs the scripted apps and the support desk through the whole
// story against d, printing one transcript line per HTTP exchange to out.
// It returns an error at the first step whose outcome is not the expected
// one.
func Play(ctx context.Context, d *Deployment, out io.Writer, opts PlayOptions) error {
	dir, err := os.MkdirTemp("", "moat-travel-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := newStory(d, out, dir, opts.Secret)
	if err != nil {
		return err
	}
	defer st.close()
	return st.run(ctx)
}

// PrintServing tells a person how to reach a deployment that serves until
// stopped: its URLs, the CA to trust (written to a file) and the
// credentials.
func PrintServing(w io.Writer, d *Deployment) error {
	caFile := filepath.Join(os.TempDir(), "moat-travel-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.CA.Raw}), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "travel API at %s", d.Issuer)
	if len(d.Instances) > 1 {
		fmt.Fprintf(w, " (a balancer in front of %d instances)", len(d.Instances))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  metadata:      %s/.well-known/oauth-authorization-server\n", d.Issuer)
	fmt.Fprintf(w, "  trust this CA: %s\n", caFile)
	fmt.Fprintf(w, "  operator API:  %s%s/devices (Authorization: Bearer %s)\n", d.Issuer, operatorPath, d.OperatorToken)
	fmt.Fprintf(w, "  dashboard:     https://operator:%s@%s/moat/analytics/\n", d.OperatorToken, strings.TrimPrefix(d.Issuer, "https://"))
	fmt.Fprintf(w, "  users: alice / %q, bob / %q; SMS codes are printed below\n", users[0].password, users[1].password)
	return nil
}

// PrintSMS is an [Options.OnSMS] for a deployment that a person drives: it
// prints each SMS the development outbox "sends".
func PrintSMS(w io.Writer) func(stepup.Message) {
	return func(m stepup.Message) {
		fmt.Fprintf(w, "  SMS to %s for %s: %s (the development outbox prints it; a real server sends it)\n", m.To, m.User, m.Code)
	}
}

// Driver drives a deployment step by step, for tests that play parts of
// the story on chosen instances (see [At]).
type Driver struct{ s *story }

// NewDriver returns a driver that prints its exchanges to out.
func NewDriver(d *Deployment, out io.Writer) (*Driver, error) {
	dir, err := os.MkdirTemp("", "moat-travel-")
	if err != nil {
		return nil, err
	}
	s, err := newStory(d, out, dir, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Driver{s: s}, nil
}

// Close releases the driver's files.
func (dr *Driver) Close() {
	dr.s.close()
	os.RemoveAll(dr.s.dir)
}

// NewApp installs the iOS app (version 2.0.0) for user ("alice" or "bob")
// on a phone deviceID, and registers it. sms, when set, answers SMS
// challenges; nil reads the code the outbox sent.
func (dr *Driver) NewApp(ctx context.Context, user, deviceID string, sms func(context.Context) (string, error)) (*client.Client, error) {
	a, err := dr.s.newApp(ctx, appSpec{name: deviceID, username: user, deviceID: deviceID, platform: "ios", channel: "phone", version: "2.0.0", sms: sms})
	if err != nil {
		return nil, err
	}
	if err := a.Register(ctx); err != nil {
		return nil, err
	}
	return a.Client, nil
}

// Call sends a request to the API with app c (through the balancer, or
// to the instance ctx names) and returns the answer, body drained.
func (dr *Driver) Call(ctx context.Context, c *client.Client, method, path string) (*http.Response, error) {
	return dr.s.call(ctx, &app{Client: c}, method, path)
}

// Operator sends one request to the device operator API.
func (dr *Driver) Operator(ctx context.Context, method, path string, body any) error {
	return dr.s.operator(ctx, method, path, body)
}

// Scopes and checks of the travel API, for tests.
const (
	ScopeRead = scopeRead
	ScopePay  = scopePay
	CheckSMS  = checkSMS
)

// Phone returns user's phone number (where the outbox sends SMS codes).
func Phone(user string) string {
	for _, u := range users {
		if u.username == user {
			return u.phone
		}
	}
	return ""
}

// Main is what the example commands run: it starts a deployment with
// opts, then, when opts.Addr is set, tells on stdout how to reach it and
// serves until interrupted; otherwise it plays the story against it within
// timeout.
func Main(opts Options, timeout time.Duration) error {
	serve := opts.Addr != ""
	if serve {
		opts.OnSMS = PrintSMS(os.Stdout)
	}
	d, err := Start(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	if serve {
		if err := PrintServing(os.Stdout, d); err != nil {
			return err
		}
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		<-stop
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Play(ctx, d, os.Stdout, PlayOptions{})
}
