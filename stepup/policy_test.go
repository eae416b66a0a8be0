package stepup_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/stepup"
)

var policyNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func serve(t *testing.T, p stepup.Policy, pr *auth.Principal, scheme string) *httptest.ResponseRecorder {
	t.Helper()
	p.Now = func() time.Time { return policyNow }
	mw, err := stepup.Require(p)
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r := httptest.NewRequest(http.MethodPost, "/reservations/1/pay", nil)
	if scheme != "" {
		r.Header.Set("Authorization", scheme+" token")
	}
	if pr != nil {
		r = r.WithContext(auth.ContextWithPrincipal(r.Context(), pr))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	pay := stepup.Policy{ACRValues: []string{"pay"}, AMR: []string{"sms"}, MaxAge: 5 * time.Minute}
	mfa := stepup.Policy{ACRValues: []string{stepup.ACRMultiFactor}, MaxAge: time.Hour}
	ago := func(d time.Duration) time.Time { return policyNow.Add(-d) }
	for _, tc := range []struct {
		name   string
		policy stepup.Policy
		pr     *auth.Principal
		ok     bool
		desc   string
	}{
		{"password only", pay, &auth.Principal{ACR: "1fa", AMR: []string{"pwd"}, AuthTime: ago(time.Minute)}, false, "different"},
		{"fresh sms", pay, &auth.Principal{AMR: []string{"pwd", "sms"}, AuthTime: ago(time.Hour), AMRTimes: map[string]time.Time{"sms": ago(time.Minute)}}, true, ""},
		{"sms exactly max age", pay, &auth.Principal{AMR: []string{"sms"}, AMRTimes: map[string]time.Time{"sms": ago(5 * time.Minute)}}, true, ""},
		{"old sms", pay, &auth.Principal{AMR: []string{"pwd", "sms"}, AuthTime: ago(time.Minute), AMRTimes: map[string]time.Time{"sms": ago(6 * time.Minute)}}, false, "recent"},
		{"sms without per-method time uses auth_time", pay, &auth.Principal{AMR: []string{"sms"}, AuthTime: ago(time.Minute)}, true, ""},
		{"sms, no times at all", pay, &auth.Principal{AMR: []string{"sms"}}, false, "recent"},
		{"acr matches", mfa, &auth.Principal{ACR: "mfa", AuthTime: ago(time.Minute)}, true, ""},
		{"acr wrong", mfa, &auth.Principal{ACR: "1fa", AuthTime: ago(time.Minute)}, false, "different"},
		{"acr too old", mfa, &auth.Principal{ACR: "mfa", AuthTime: ago(2 * time.Hour)}, false, "recent"},
		{"any age", stepup.Policy{ACRValues: []string{"mfa"}, MaxAge: stepup.AnyAge}, &auth.Principal{ACR: "mfa"}, true, ""},
		{"no principal", mfa, nil, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := serve(t, tc.policy, tc.pr, "DPoP")
			if tc.ok {
				require.Equal(t, http.StatusNoContent, w.Code)
				return
			}
			require.Equal(t, http.StatusUnauthorized, w.Code)
			if tc.pr == nil {
				return
			}
			h := w.Header().Get("WWW-Authenticate")
			require.True(t, strings.HasPrefix(h, "DPoP "), h)
			require.Contains(t, h, `error="insufficient_user_authentication"`)
			require.Contains(t, h, `acr_values="`+strings.Join(tc.policy.ACRValues, " ")+`"`)
			require.Contains(t, h, tc.desc)
			require.Contains(t, w.Body.String(), `"error":"insufficient_user_authentication"`)
		})
	}
}

// The challenge has the shape of RFC 9470 §3's example
// (testdata/rfc9470_www_authenticate.txt): scheme Bearer, error, acr_values.
func TestPolicyChallengeFormat(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/rfc9470_www_authenticate.txt")
	require.NoError(t, err)
	want := parseChallenge(t, strings.TrimPrefix(strings.TrimSpace(string(b)), "WWW-Authenticate: "))
	require.Equal(t, "Bearer", want["scheme"])
	require.Equal(t, "insufficient_user_authentication", want["error"])
	require.Equal(t, "myACR", want["acr_values"])
	_, hasMaxAge := want["max_age"]
	require.False(t, hasMaxAge)

	w := serve(t, stepup.Policy{ACRValues: []string{"myACR"}, MaxAge: stepup.AnyAge}, &auth.Principal{ACR: "other"}, "Bearer")
	got := parseChallenge(t, w.Header().Get("WWW-Authenticate"))
	for _, k := range []string{"scheme", "error", "acr_values"} {
		require.Equal(t, want[k], got[k], k)
	}
	_, hasMaxAge = got["max_age"]
	require.False(t, hasMaxAge, "AnyAge sends no max_age")

	w = serve(t, stepup.Policy{ACRValues: []string{"pay", "mfa"}, MaxAge: 300 * time.Second}, &auth.Principal{ACR: "1fa"}, "Bearer")
	got = parseChallenge(t, w.Header().Get("WWW-Authenticate"))
	require.Equal(t, "pay mfa", got["acr_values"])
	require.Equal(t, "300", got["max_age"])
}

// parseChallenge parses one challenge: scheme, then comma-separated
// auth-params whose values are tokens or quoted strings (RFC 9110 §11.2).
func parseChallenge(t *testing.T, s string) map[string]string {
	t.Helper()
	scheme, rest, ok := strings.Cut(s, " ")
	require.True(t, ok, s)
	m := map[string]string{"scheme": scheme}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		require.True(t, ok, rest)
		k = strings.TrimSpace(k)
		if strings.HasPrefix(v, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
				b.WriteByte(v[i])
			}
			require.Less(t, i, len(v), "unterminated quoted string")
			m[k] = b.String()
			rest = v[i+1:]
		} else {
			end := strings.IndexByte(v, ',')
			if end < 0 {
				end = len(v)
			}
			m[k] = strings.TrimSpace(v[:end])
			rest = v[end:]
		}
		rest = strings.TrimLeft(rest, ", ")
	}
	return m
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]stepup.Policy{
		"no acr":       {MaxAge: time.Minute},
		"no max age":   {ACRValues: []string{"x"}},
		"sub-second":   {ACRValues: []string{"x"}, MaxAge: time.Millisecond},
		"negative":     {ACRValues: []string{"x"}, MaxAge: -2},
		"empty acr":    {ACRValues: []string{""}, MaxAge: time.Minute},
		"empty method": {ACRValues: []string{"x"}, AMR: []string{""}, MaxAge: time.Minute},
	} {
		_, err := stepup.Require(p)
		require.ErrorIs(t, err, stepup.ErrInvalidPolicy, name)
	}
	require.Panics(t, func() { stepup.MustRequire(stepup.Policy{}) })
}

func TestPolicyCheckTwin(t *testing.T) {
	t.Parallel()
	p := stepup.Policy{ACRValues: []string{"mfa"}, MaxAge: time.Hour, Now: func() time.Time { return policyNow }}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	err := p.Check(r.WithContext(auth.ContextWithPrincipal(r.Context(), &auth.Principal{ACR: "mfa", AuthTime: policyNow})))
	require.NoError(t, err)
	err = p.Check(r.WithContext(auth.ContextWithPrincipal(r.Context(), &auth.Principal{ACR: "1fa", AuthTime: policyNow})))
	var re *auth.ResourceError
	require.ErrorAs(t, err, &re)
	require.Equal(t, auth.CodeInsufficientUserAuthentication, re.Code)
	require.Equal(t, 3600, re.MaxAge)
}

func TestACRAndAMR(t *testing.T) {
	t.Parallel()
	require.Equal(t, "", stepup.ACRFor(nil))
	require.Equal(t, stepup.ACROneFactor, stepup.ACRFor([]string{"pwd"}))
	require.Equal(t, stepup.ACROneFactor, stepup.ACRFor([]string{"pwd", "pin"}), "two knowledge factors are one kind")
	require.Equal(t, stepup.ACRMultiFactor, stepup.ACRFor([]string{"pwd", "sms"}))
	require.Equal(t, stepup.ACRMultiFactor, stepup.ACRFor([]string{"hwk", "fpt"}))
	require.Equal(t, []string{"mfa", "pwd", "sms"}, stepup.CombineAMR([]string{"pwd"}, []string{"sms", "pwd"}))
	require.Equal(t, []string{"otp"}, stepup.CombineAMR([]string{"otp"}, nil))
	require.Equal(t, stepup.FactorInherence, stepup.KindOf("face"))
	require.Equal(t, stepup.FactorUnknown, stepup.KindOf("bogus"))
}
