package stepup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/client"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/kv"
	"github.com/moatsec/moat/securestore"
	"github.com/moatsec/moat/stepup"
)

// endpoint is a moat stack whose scopes each ask for one factor, behind
// a test server, and what the factors' clients need to answer.
type endpoint struct {
	ts       *httptest.Server
	outbox   *stepup.Outbox
	totp     *stepup.TOTPCheck
	hotp     *stepup.HOTPCheck
	recovery *stepup.RecoveryCheck
	pin      *stepup.PINCheck
	devKey   *stepup.DeviceKeyCheck
}

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	store := kv.NewMemory(kv.MemoryConfig{})
	hasher := weakHasher(t)
	dir := stepup.NewMemoryDirectory(hasher)
	require.NoError(t, dir.AddUser(ctx, "alice", "user-alice", "correct horse"))
	sealer, err := securestore.NewSealer(securestore.SealerConfig{Keys: []securestore.SealerKey{securestore.GenerateSealerKey(1)}})
	require.NoError(t, err)
	enrollments := stepup.NewMemoryOTPStore()
	e := &endpoint{ts: ts, outbox: stepup.NewOutbox()}

	login, err := stepup.NewPasswordCheck(stepup.PasswordConfig{Name: "UserLogin", Users: dir, Hasher: hasher, Store: store})
	require.NoError(t, err)
	email, err := stepup.NewEmailCheck(stepup.CodeConfig{Name: "EmailOTP", Store: store, Sender: e.outbox,
		Destinations: stepup.DestinationMap{"user-alice": "alice@example.com"}})
	require.NoError(t, err)
	e.totp, err = stepup.NewTOTPCheck(stepup.TOTPConfig{Name: "TOTP", Issuer: "Travel Co", Enrollments: enrollments, Sealer: sealer, Store: store})
	require.NoError(t, err)
	e.hotp, err = stepup.NewHOTPCheck(stepup.HOTPConfig{Name: "Token", Enrollments: enrollments, Sealer: sealer, Store: store})
	require.NoError(t, err)
	e.recovery, err = stepup.NewRecoveryCheck(stepup.RecoveryConfig{Name: "Recovery", Codes: stepup.NewMemoryRecoveryStore(), Store: store})
	require.NoError(t, err)
	e.pin, err = stepup.NewPINCheck(stepup.PINConfig{Name: "PIN", PINs: stepup.NewMemoryPINStore(), Hasher: hasher, Store: store})
	require.NoError(t, err)
	e.devKey, err = stepup.NewDeviceKeyCheck(stepup.DeviceKeyConfig{Name: "DeviceKey", Keys: stepup.NewMemoryDeviceKeyStore(), Store: store})
	require.NoError(t, err)
	byChannel, err := stepup.NewByChannel(stepup.ChannelConfig{Name: "Login", Store: store, Methods: map[string][]auth.Check{
		"phone": {e.devKey}, "watch": {e.pin}, "web": {login, e.totp},
	}})
	require.NoError(t, err)

	signer, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	keys, err := auth.NewKeySet(signer, 1)
	require.NoError(t, err)
	dev, err := attest.NewInsecureDevelopmentVerifier(attest.FormatInsecureDevelopment)
	require.NoError(t, err)
	stack, err := moat.New(moat.Config{
		Auth: auth.Config{
			Issuer: "http://" + ts.Listener.Addr().String(), Store: store, Clients: auth.NewMemoryClients(), Keys: keys,
			Checks: []auth.Check{login, email, e.totp, e.hotp, e.recovery, byChannel},
			Scopes: []auth.ScopeRule{
				{Scope: "email", Checks: []string{"UserLogin", "EmailOTP"}},
				{Scope: "totp", Checks: []string{"UserLogin", "TOTP"}},
				{Scope: "hotp", Checks: []string{"UserLogin", "Token"}},
				{Scope: "recovery", Checks: []string{"UserLogin", "Recovery"}},
				{Scope: "login", Checks: []string{"Login"}},
			},
			ACRs:       []auth.ACR{{Value: stepup.ACROneFactor, Checks: []string{"UserLogin"}}},
			CombineAMR: stepup.CombineAMR,
		},
		Devices:     device.Config{Store: device.NewMemory(device.MemoryConfig{})},
		Attestation: attest.PolicyConfig{Rules: []attest.Rule{{Verifiers: []attest.Verifier{dev}}}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Close() })
	mux := http.NewServeMux()
	stack.Mount(mux)
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

// app registers a client on channel with handlers (the password is
// always answered) and returns it with its key.
func (e *endpoint) app(t *testing.T, deviceID, channel string, handlers map[string]client.ChallengeHandler) (*client.Client, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := auth.GenerateSigningKey(auth.AlgES256)
	require.NoError(t, err)
	h := map[string]client.ChallengeHandler{"UserLogin": func(context.Context, json.RawMessage) (any, error) {
		return stepup.PasswordAnswer{Username: "alice", Password: "correct horse"}, nil
	}}
	for name, fn := range handlers {
		h[name] = fn
	}
	c, err := client.New(context.Background(), client.Config{
		Issuer: e.ts.URL, Key: key, AppID: "com.example.travel", AppVersion: "1.0.0", Platform: "ios", Channel: channel, DeviceID: deviceID,
		Attest: func(_ context.Context, nonce, _ string) (json.RawMessage, error) {
			return attest.InsecureDevelopmentEvidence(key, nonce)
		},
		Handlers: h,
	})
	require.NoError(t, err)
	require.NoError(t, c.Register(context.Background()))
	return c, key.(*ecdsa.PrivateKey)
}

// amr returns the amr claim of c's access token.
func amr(t *testing.T, c *client.Client) []string {
	t.Helper()
	parts := strings.Split(c.AccessToken(), ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		Sub string   `json:"sub"`
		AMR []string `json:"amr"`
	}
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, "user-alice", claims.Sub)
	return claims.AMR
}

// Every factor through the Authorization Challenge Endpoint and the Go
// client: the challenge reaches the app's handler, its answer comes back,
// and the token carries the factor's amr.
func TestEveryFactorThroughTheEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEndpoint(t)
	answered := map[string]int{}
	var mu sync.Mutex
	count := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		answered[name]++
	}

	t.Run("email", func(t *testing.T) {
		c, _ := e.app(t, "d-email", "phone", map[string]client.ChallengeHandler{"EmailOTP": func(_ context.Context, ch json.RawMessage) (any, error) {
			count("EmailOTP")
			require.Contains(t, string(ch), `"channel":"email"`)
			return stepup.CodeAnswer{Code: e.outbox.LastCode("alice@example.com")}, nil
		}})
		require.NoError(t, c.Authorize(ctx, "email"))
		require.Equal(t, []string{"email", "mfa", "pwd"}, amr(t, c))
	})

	t.Run("totp", func(t *testing.T) {
		setup, err := e.totp.Enroll(ctx, "user-alice", "alice@example.com", time.Now())
		require.NoError(t, err)
		secret, err := stepup.ParseSecret(setup.Secret)
		require.NoError(t, err)
		k := stepup.OTPKey{Secret: secret}
		// Confirm with the previous step's code, so that the sign-in's
		// current code is newer than the step the confirmation consumed.
		code, err := k.TOTP(time.Now().Add(-30 * time.Second))
		require.NoError(t, err)
		require.NoError(t, e.totp.Confirm(ctx, "user-alice", code, time.Now()))
		c, _ := e.app(t, "d-totp", "phone", map[string]client.ChallengeHandler{"TOTP": func(context.Context, json.RawMessage) (any, error) {
			count("TOTP")
			code, err := k.TOTP(time.Now())
			return stepup.OTPAnswer{Code: code}, err
		}})
		require.NoError(t, c.Authorize(ctx, "totp"))
		require.Equal(t, []string{"mfa", "otp", "pwd"}, amr(t, c))
	})

	t.Run("hotp", func(t *testing.T) {
		k := stepup.OTPKey{Secret: []byte("12345678901234567890")}
		require.NoError(t, e.hotp.Import(ctx, "user-alice", k, 3, time.Now()))
		c, _ := e.app(t, "d-hotp", "phone", map[string]client.ChallengeHandler{"Token": func(context.Context, json.RawMessage) (any, error) {
			count("Token")
			code, err := k.HOTP(5) // the button was pressed twice without signing in
			return stepup.OTPAnswer{Code: code}, err
		}})
		require.NoError(t, c.Authorize(ctx, "hotp"))
		require.Equal(t, []string{"mfa", "otp", "pwd"}, amr(t, c))
	})

	t.Run("recovery", func(t *testing.T) {
		codes, err := e.recovery.Generate(ctx, "user-alice")
		require.NoError(t, err)
		c, _ := e.app(t, "d-recovery", "phone", map[string]client.ChallengeHandler{"Recovery": func(context.Context, json.RawMessage) (any, error) {
			count("Recovery")
			return stepup.OTPAnswer{Code: codes[0]}, nil
		}})
		require.NoError(t, c.Authorize(ctx, "recovery"))
		require.Equal(t, []string{"mfa", "pwd", "recovery"}, amr(t, c))
		left, err := e.recovery.Remaining(ctx, "user-alice")
		require.NoError(t, err)
		require.Equal(t, len(codes)-1, left, "used once")
	})

	t.Run("phone: device key", func(t *testing.T) {
		var c *client.Client
		var key *ecdsa.PrivateKey
		c, key = e.app(t, "d-phone", "phone", map[string]client.ChallengeHandler{"Login": func(_ context.Context, raw json.RawMessage) (any, error) {
			count("DeviceKey")
			var ch stepup.ChannelChallenge
			if err := json.Unmarshal(raw, &ch); err != nil {
				return nil, err
			}
			require.Equal(t, "DeviceKey", ch.Method)
			b, _ := json.Marshal(ch.Challenge)
			var dk stepup.DeviceKeyChallenge
			if err := json.Unmarshal(b, &dk); err != nil {
				return nil, err
			}
			h := sha256.Sum256(stepup.DeviceKeySigningInput(c.ClientID(), dk.Nonce))
			sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
			if err != nil {
				return nil, err
			}
			return stepup.ChannelAnswer{Method: "DeviceKey", Answer: mustJSON(t, stepup.DeviceKeyAnswer{Nonce: dk.Nonce, Signature: base64.RawURLEncoding.EncodeToString(sig)})}, nil
		}})
		// In a real app the device key is a second key, made in the secure
		// element; the client's DPoP key stands in for it here.
		require.NoError(t, e.devKey.Enroll(ctx, stepup.DeviceKey{ClientID: c.ClientID(), Subject: "user-alice", PublicKey: &key.PublicKey, Biometry: stepup.AMRFace}))
		require.NoError(t, c.Authorize(ctx, "login"))
		require.Equal(t, []string{"face", "hwk", "mfa"}, amr(t, c))
	})

	t.Run("watch: PIN", func(t *testing.T) {
		require.NoError(t, e.pin.SetPIN(ctx, "d-watch", "user-alice", "4821", time.Now()))
		c, _ := e.app(t, "d-watch", "watch", map[string]client.ChallengeHandler{"Login": func(_ context.Context, raw json.RawMessage) (any, error) {
			count("PIN")
			require.Contains(t, string(raw), `"method":"PIN"`)
			return stepup.ChannelAnswer{Method: "PIN", Answer: mustJSON(t, stepup.PINAnswer{PIN: "4821"})}, nil
		}})
		require.NoError(t, c.Authorize(ctx, "login"))
		require.Equal(t, []string{"pin"}, amr(t, c))
	})

	t.Run("web: password then TOTP", func(t *testing.T) {
		setup, err := e.totp.Enroll(ctx, "user-alice", "alice@example.com", time.Now())
		require.NoError(t, err)
		secret, _ := stepup.ParseSecret(setup.Secret)
		k := stepup.OTPKey{Secret: secret}
		code, _ := k.TOTP(time.Now().Add(-30 * time.Second))
		require.NoError(t, e.totp.Confirm(ctx, "user-alice", code, time.Now()))
		c, _ := e.app(t, "d-web", "web", map[string]client.ChallengeHandler{"Login": func(_ context.Context, raw json.RawMessage) (any, error) {
			var ch stepup.ChannelChallenge
			if err := json.Unmarshal(raw, &ch); err != nil {
				return nil, err
			}
			count("web:" + ch.Method)
			if ch.Method == "UserLogin" {
				return stepup.ChannelAnswer{Method: "UserLogin", Answer: mustJSON(t, stepup.PasswordAnswer{Username: "alice", Password: "correct horse"})}, nil
			}
			code, err := k.TOTP(time.Now())
			return stepup.ChannelAnswer{Method: "TOTP", Answer: mustJSON(t, stepup.OTPAnswer{Code: code})}, err
		}})
		require.NoError(t, c.Authorize(ctx, "login"))
		require.Equal(t, []string{"mfa", "otp", "pwd"}, amr(t, c))
	})

	for _, name := range []string{"EmailOTP", "TOTP", "Token", "Recovery", "DeviceKey", "PIN", "web:UserLogin", "web:TOTP"} {
		require.Positive(t, answered[name], "%s was asked", name)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
