package analyticstest

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/moatsec/moat/analytics"
)

// StoryResult tells what a [Story] did.
type StoryResult struct {
	// Calls and SecurityEvents count what the story recorded.
	Calls, SecurityEvents int
	// Refusals counts the security outcomes that refused a client.
	Refusals int
	// ByChannel counts calls by the caller's channel ("" for calls that
	// were refused before a caller was known).
	ByChannel map[string]int
	// Kinds counts security outcomes by kind.
	Kinds map[analytics.Kind]int
	// Secrets lists every secret the story put in requests or handed to
	// the recorder by mistake: tokens, DPoP proofs, cookies, API keys, raw
	// device ids, passwords, one-time codes, reset tokens.
	Secrets []string
}

type storyDevice struct {
	caller analytics.Caller
	token  string // the access token the device presents
	stolen bool
}

// Story plays hours of synthetic traffic of a travel app against rec and
// returns what it did. Time comes from advance: the story moves it forward
// by each call's latency and spreads the calls over each hour, so rec must
// read its clock from the same source (for example a kvtest.Clock, whose
// Advance fits here).
//
// Requests go through a stack shaped like moat's: rec.Middleware outermost,
// a stand-in authentication stage that refuses stolen devices and replaces
// the request (as real ones do, so the recorder cannot see the ServeMux's
// pattern by itself), rec.Annotate, and a ServeMux. Every request carries
// secrets where real ones do (Authorization, DPoP, Cookie and X-API-Key
// headers, tokens in query strings and paths), and some security events
// carry secrets where a buggy hook might put them: the recorder must keep
// none of them.
func Story(rec *analytics.Recorder, advance func(time.Duration), hours int) StoryResult {
	rng := rand.New(rand.NewPCG(7, uint64(hours)))
	res := StoryResult{ByChannel: map[string]int{}, Kinds: map[analytics.Kind]int{}}
	secret := func(s string) string { res.Secrets = append(res.Secrets, s); return s }

	devices := []*storyDevice{
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone", DeviceModel: "iPhone15,2", OSVersion: "17.4"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone", DeviceModel: "iPhone14,5", OSVersion: "17.3"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.0", Platform: "android", Channel: "phone", DeviceModel: "Pixel 8", OSVersion: "14"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "android", Channel: "phone", DeviceModel: "SM-S918B", OSVersion: "14"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "tablet", DeviceModel: "iPad13,4", OSVersion: "17.4"}},
		{caller: analytics.Caller{AppID: "travel-watch", AppVersion: "1.2.0", Platform: "watchos", Channel: "watch", DeviceModel: "Watch6,1", OSVersion: "10.4"}},
		{caller: analytics.Caller{AppID: "travel-web", AppVersion: "2026.5", Platform: "web", Channel: "web", DeviceModel: "Firefox", OSVersion: "126"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "1.9.0", Platform: "android", Channel: "phone", DeviceModel: "Pixel 4a", OSVersion: "13"}},
		{caller: analytics.Caller{AppID: "travel", AppVersion: "2.4.1", Platform: "ios", Channel: "phone", DeviceModel: "iPhone13,2", OSVersion: "16.7"}, stolen: true},
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	byToken := map[string]*storyDevice{}
	for i, d := range devices {
		d.caller.DeviceID = secret(fmt.Sprintf("raw-device-serial-%04d-%08x", i, rng.Uint32()))
		d.token = secret(b64(`{"alg":"ES256","typ":"at+jwt","kid":"k1"}`) + "." +
			b64(fmt.Sprintf(`{"sub":"traveller-%d","device_id":%q,"scope":"trips pay"}`, i, d.caller.DeviceID)) + "." +
			b64(fmt.Sprintf("signature-%d-%08x-%08x", i, rng.Uint32(), rng.Uint32())))
		byToken[d.token] = d
	}
	oldVersion, stolen := devices[7], devices[8]
	password := secret("correct horse battery staple")
	smsCode := secret("493817")
	resetToken := secret(fmt.Sprintf("rst%016x", rng.Uint64()))
	apiKey := secret(fmt.Sprintf("ak_live_%016x", rng.Uint64()))
	cookie := secret(fmt.Sprintf("sess%016x", rng.Uint64()))

	latency := func(route string) time.Duration {
		base := map[string]time.Duration{"pay": 180 * time.Millisecond, "offers": 40 * time.Millisecond, "token": 25 * time.Millisecond}[route]
		if base == 0 {
			base = 8 * time.Millisecond
		}
		return base + time.Duration(rng.IntN(int(base)))
	}
	mux := http.NewServeMux()
	handle := func(pattern, name string, status int) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			advance(latency(name))
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"ok":true,"route":%q}`, name)
		})
	}
	handle("GET /trips", "trips", 200)
	handle("GET /trips/{id}", "trip", 200)
	handle("POST /trips/{id}/pay", "pay", 200)
	handle("GET /offers", "offers", 200)
	handle("POST /authorize-challenge", "challenge", 200)
	handle("POST /token", "token", 200)
	handle("POST /password/reset/{token}", "reset", 204)
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })

	type callerKey struct{}
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
			d := byToken[tok]
			if d == nil && r.URL.Path != "/token" && r.URL.Path != "/authorize-challenge" && !strings.HasPrefix(r.URL.Path, "/password/") {
				http.Error(w, "invalid_token", http.StatusUnauthorized)
				return
			}
			if d != nil && d.stolen {
				http.Error(w, "device_blocked", http.StatusForbidden)
				return
			}
			ctx := r.Context()
			if d != nil {
				analytics.SetCaller(ctx, d.caller)
				ctx = context.WithValue(ctx, callerKey{}, d)
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	stack := rec.Middleware(auth(rec.Annotate(mux)))

	call := func(d *storyDevice, method, target string) {
		req := httptest.NewRequest(method, target, strings.NewReader(`{"password":"`+password+`"}`))
		if d != nil {
			req.Header.Set("Authorization", "DPoP "+d.token)
			req.Header.Set("DPoP", d.token+"."+b64("proof"))
		}
		req.Header.Set("Cookie", "session="+cookie)
		req.Header.Set("X-API-Key", apiKey)
		stack.ServeHTTP(httptest.NewRecorder(), req)
		res.Calls++
		if d != nil && !d.stolen {
			res.ByChannel[d.caller.Channel]++
		} else {
			res.ByChannel[""]++
		}
	}
	event := func(d *storyDevice, kind analytics.Kind, name, reason string) {
		rec.Security(context.Background(), analytics.SecurityEvent{Kind: kind, Caller: d.caller, Name: name, Reason: reason})
		res.SecurityEvents++
		res.Kinds[kind]++
		if kind.Refusal() {
			res.Refusals++
		}
	}

	for _, d := range devices {
		if d == oldVersion {
			event(d, analytics.RegistrationRefused, "version-policy", "below_minimum")
			continue
		}
		event(d, analytics.AttestationPassed, "app-attest", "ok")
		event(d, analytics.RegistrationAccepted, "registration", "ok")
	}
	event(devices[2], analytics.AttestationFailed, "play-integrity", "device_integrity_missing")
	// A buggy hook that passes a token and a code as the reason.
	event(devices[3], analytics.ChallengeFailed, "sms", "wrong code="+smsCode+" for "+devices[3].token)

	live := devices[:7]
	step := time.Hour / 40
	for h := range hours {
		for i := range 40 - 4*(h%3) {
			d := live[rng.IntN(len(live))]
			switch i % 10 {
			case 0:
				call(d, "POST", "/authorize-challenge")
				event(d, analytics.ChallengeIssued, "password", "")
				if rng.IntN(5) == 0 {
					event(d, analytics.ChallengeFailed, "password", "wrong_password")
					event(d, analytics.ChallengeIssued, "password", "retry")
				}
				event(d, analytics.ChallengeAnswered, "password", "")
				call(d, "POST", "/token")
			case 3:
				call(d, "POST", fmt.Sprintf("/trips/%d/pay?access_token=%s", rng.IntN(100), d.token))
				event(d, analytics.StepUpDemanded, "payment", "acr_sms")
				event(d, analytics.ChallengeIssued, "sms", "")
				event(d, analytics.ChallengeAnswered, "sms", "")
				event(d, analytics.StepUpCompleted, "payment", "")
				call(d, "POST", fmt.Sprintf("/trips/%d/pay", rng.IntN(100)))
			case 5:
				call(d, "GET", "/offers?promo_code=SUMMER&api_key="+apiKey)
			case 7:
				call(d, "GET", fmt.Sprintf("/trips/%d", rng.IntN(100)))
			default:
				call(d, "GET", "/trips")
			}
			advance(step)
		}
		call(stolen, "GET", "/trips")
		event(stolen, analytics.DeviceRefused, "device-status", "stolen")
		event(oldVersion, analytics.VersionRefused, "version-policy", "below_minimum")
		call(nil, "POST", "/password/reset/"+resetToken)
		call(nil, "GET", "/admin/"+resetToken)
		call(live[0], "GET", "/boom")
		if h%2 == 1 {
			event(live[5], analytics.PinViolation, "api.travel.example", "pin_mismatch")
			event(live[1], analytics.UpdateApplied, "web-bundle", "2026.05.1")
		}
		if h == 2 {
			for range 5 {
				event(live[4], analytics.ChallengeFailed, "pin", "wrong_pin")
			}
			event(live[4], analytics.CheckBlocked, "pin", "locked")
		}
	}
	return res
}
