package moat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/internal/httpjson"
	"github.com/moatsec/moat/stepup"
	"github.com/moatsec/moat/update"
)

// Config configures [New]: one configuration for the whole stack.
type Config struct {
	// Auth configures the authorization server: issuer, stores, signing
	// keys, checks, scopes and acr values. Leave RegistrationPolicy and
	// ClientPolicy nil: the stack builds them from Attestation and
	// Devices. OnEvent and CombineAMR, when nil, are filled in too.
	Auth auth.Config

	// Origin is the public origin of the protected API, which DPoP proofs
	// name. Empty means Auth.Issuer.
	Origin string

	// Devices configures device status and app-version control, enforced
	// at registration, at every refresh and on every protected request.
	// Its Store is required; a nil KV means Auth.Store.
	Devices device.Config

	// Attestation says which registrations need which attestation. At
	// least one rule is required (a rule with Requirement attest.Off
	// states explicitly that an app needs none).
	Attestation attest.PolicyConfig

	// Updates, when set, configures the Direct Update server: Mount serves
	// it under UpdatePrefix, and protected calls from clients that lack a
	// mandatory web-resource update are refused with 403 update_required
	// (the client reports its installed bundle version in the
	// Moat-Bundle-Version header). Its Observe is chained with the
	// stack's. Nil means no update channel and no gate.
	Updates *update.ServerConfig
	// UpdatePrefix is where Updates is mounted. Empty means "/update".
	UpdatePrefix string

	// Analytics, when set, records every protected call and every security
	// outcome (registrations, challenges, blocks, step-ups, refused devices
	// and versions, attestation verdicts, pin violations, updates) without
	// slowing requests; see package analytics. Its Identify is set by the
	// stack (from the principal). Nil means no analytics.
	Analytics *analytics.Config
	// AnalyticsAuthorize guards the analytics query API and dashboard
	// (operators only). Required with Analytics.
	AnalyticsAuthorize func(http.Handler) http.Handler
	// AnalyticsPrefix is where Mount serves <prefix>/analytics/ and
	// <prefix>/pin-reports (pinning violation reports, fed to analytics).
	// Empty means "/moat".
	AnalyticsPrefix string

	// AcceptBearerTokens lets confidential clients' client_credentials
	// tokens (not bound to a key) call protected routes; they skip the
	// device stage, having no device. False: only DPoP-bound tokens.
	AcceptBearerTokens bool

	// Logger receives internal errors. Nil means slog.Default().
	Logger *slog.Logger
}

// Stack is moat assembled: the authorization server's endpoints and the
// middleware that protects an API. Build it with [New].
type Stack struct {
	cfg      Config
	server   *auth.Server
	resource *auth.Resource
	devices  *device.Control
	attest   *attest.Policy
	updates  *update.Server
	rec      *analytics.Recorder
	recAPI   http.Handler
	pinRep   http.Handler
	logger   *slog.Logger
}

// New builds the stack: the attestation policy, device control, the
// authorization server and the resource middleware, wired together.
func New(cfg Config) (*Stack, error) {
	if cfg.Auth.RegistrationPolicy != nil || cfg.Auth.ClientPolicy != nil {
		return nil, errors.New("moat: leave Auth.RegistrationPolicy and Auth.ClientPolicy nil; the stack builds them from Attestation and Devices")
	}
	if cfg.Auth.Store == nil {
		return nil, errors.New("moat: Auth.Store is required")
	}
	s := &Stack{cfg: cfg, logger: cfg.Logger}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if cfg.Origin == "" {
		cfg.Origin = cfg.Auth.Issuer
	}
	if cfg.UpdatePrefix == "" {
		cfg.UpdatePrefix = "/update"
	}
	if cfg.AnalyticsPrefix == "" {
		cfg.AnalyticsPrefix = "/moat"
	}
	var err error
	if cfg.Analytics != nil {
		if err := s.startAnalytics(&cfg); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Stack, error) {
		s.Close()
		return nil, err
	}
	if s.rec != nil {
		userResult := cfg.Attestation.OnResult
		cfg.Attestation.OnResult = func(ctx context.Context, reg *attest.Registration, res *attest.Result, err error) {
			s.onAttestation(ctx, reg, res, err)
			if userResult != nil {
				userResult(ctx, reg, res, err)
			}
		}
		userObserve := cfg.Devices.Observe
		cfg.Devices.Observe = func(ctx context.Context, e device.Event) {
			s.onDevice(ctx, e)
			if userObserve != nil {
				userObserve(ctx, e)
			}
		}
	}
	if s.attest, err = attest.NewPolicy(cfg.Attestation); err != nil {
		return fail(fmt.Errorf("moat: attestation: %w", err))
	}
	if cfg.Updates != nil {
		uc := *cfg.Updates
		if s.rec != nil {
			userObserve := uc.Observe
			uc.Observe = func(e update.Event) {
				s.onUpdate(e)
				if userObserve != nil {
					userObserve(e)
				}
			}
		}
		if s.updates, err = update.NewServer(uc); err != nil {
			return fail(fmt.Errorf("moat: updates: %w", err))
		}
	}
	if cfg.Devices.KV == nil {
		cfg.Devices.KV = cfg.Auth.Store
	}
	if cfg.Devices.Logger == nil {
		cfg.Devices.Logger = cfg.Logger
	}
	if s.devices, err = device.New(cfg.Devices); err != nil {
		return fail(fmt.Errorf("moat: devices: %w", err))
	}
	ac := cfg.Auth
	ac.RegistrationPolicy = registrationPolicy{attest: s.attest, devices: s.devices}
	ac.ClientPolicy = clientPolicy{devices: s.devices}
	if ac.CombineAMR == nil {
		ac.CombineAMR = stepup.CombineAMR
	}
	if ac.Logger == nil {
		ac.Logger = cfg.Logger
	}
	userEvents := ac.OnEvent
	ac.OnEvent = func(ctx context.Context, e auth.Event) {
		s.onAuthEvent(ctx, e)
		if userEvents != nil {
			userEvents(ctx, e)
		}
	}
	if s.server, err = auth.NewServer(ac); err != nil {
		return fail(err)
	}
	if s.resource, err = auth.NewResource(auth.ResourceConfig{
		Validator: s.server.Validator(), DPoP: s.server.DPoP(), Store: ac.Store, Origin: cfg.Origin,
		AcceptBearerTokens: cfg.AcceptBearerTokens, Logger: cfg.Logger, Now: ac.Now,
	}); err != nil {
		return fail(err)
	}
	s.cfg = cfg
	return s, nil
}

// onAuthEvent keeps the device registry's users up to date at sign-in
// and reports security outcomes to analytics. It must not block the
// request, so the registry write runs on its own.
func (s *Stack) onAuthEvent(ctx context.Context, e auth.Event) {
	s.recordAuthEvent(ctx, e)
	if e.Kind != auth.EventTokenIssued || e.Client == nil || e.Client.Confidential || e.Subject == "" {
		return
	}
	dc := deviceClient(e.Client)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.devices.Seen(ctx, dc, device.Info{UserID: e.Subject}); err != nil {
			s.logger.Warn("moat: recording the device's user", "err", err)
		}
	}()
}

// Server returns the authorization server.
func (s *Stack) Server() *auth.Server { return s.server }

// Resource returns the resource middleware factory (token and DPoP).
func (s *Stack) Resource() *auth.Resource { return s.resource }

// Devices returns device control, for operator actions and the operator
// API (device.NewOperatorHandler).
func (s *Stack) Devices() *device.Control { return s.devices }

// Analytics returns the recorder, or nil without Config.Analytics.
func (s *Stack) Analytics() *analytics.Recorder { return s.rec }

// Updates returns the update server, or nil without Config.Updates.
func (s *Stack) Updates() *update.Server { return s.updates }

// Close releases what the stack holds: device invalidation subscriptions,
// and the analytics recorder (whose queued events it aggregates first).
func (s *Stack) Close() error {
	var errs []error
	if s.devices != nil {
		errs = append(errs, s.devices.Close())
	}
	if s.rec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, s.rec.Close(ctx))
	}
	return errors.Join(errs...)
}

// Mount adds the authorization server's endpoints to mux: Auth.Prefix
// ("/oauth" by default) and /.well-known/oauth-authorization-server; the
// update server under UpdatePrefix when there is one; and with analytics,
// the query API and dashboard under AnalyticsPrefix + "/analytics/" and
// the pinning report endpoint at AnalyticsPrefix + "/pin-reports".
func (s *Stack) Mount(mux *http.ServeMux) {
	s.server.Mount(mux)
	if s.updates != nil {
		mux.Handle(s.cfg.UpdatePrefix+"/", http.StripPrefix(s.cfg.UpdatePrefix, s.updates))
	}
	if s.rec != nil {
		mux.Handle(s.cfg.AnalyticsPrefix+"/analytics/", s.recAPI)
		mux.Handle("POST "+s.cfg.AnalyticsPrefix+"/pin-reports", s.pinRep)
	}
}

// Route is what one protected route requires beyond a valid token.
type Route struct {
	// Scopes must all have been granted (403 insufficient_scope).
	Scopes []string
	// StepUp, when set, is the route's step-up policy (401
	// insufficient_user_authentication, RFC 9470).
	StepUp *stepup.Policy
}

// Protect returns the middleware for one route, with the stages in order:
// recover, analytics recorder, token and DPoP, device status and version
// policy, mandatory update, scope, step-up, then the handler.
func (s *Stack) Protect(r Route) (func(http.Handler) http.Handler, error) {
	var stepUp func(http.Handler) http.Handler
	if r.StepUp != nil {
		var err error
		if stepUp, err = s.StepUp(*r.StepUp); err != nil {
			return nil, err
		}
	}
	scope := s.Scope(r.Scopes...)
	return func(next http.Handler) http.Handler {
		h := next
		if stepUp != nil {
			h = stepUp(h)
		}
		if s.rec != nil {
			h = s.rec.Annotate(h)
		}
		h = s.DeviceCheck(s.UpdateCheck(scope(h)))
		if s.rec != nil {
			// Attribute the call as soon as the caller is known, so calls
			// refused by a later stage are counted by app and channel too.
			inner := h
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if p, ok := auth.PrincipalFrom(r.Context()); ok {
					analytics.SetCaller(r.Context(), callerOf(p))
				}
				inner.ServeHTTP(w, r)
			})
		}
		h = s.Authenticate(h)
		if s.rec != nil {
			h = s.rec.Middleware(h)
		}
		return s.Recover(h)
	}, nil
}

// MustProtect is Protect that panics on an invalid route (a programming
// mistake at setup).
func (s *Stack) MustProtect(r Route) func(http.Handler) http.Handler {
	m, err := s.Protect(r)
	if err != nil {
		panic(err)
	}
	return m
}

// Handler protects next with a valid token and the device stage only.
func (s *Stack) Handler(next http.Handler) http.Handler {
	return s.MustProtect(Route{})(next)
}

// Recover is the outermost stage: a panic in a later stage or the handler
// is logged and answered 500, never crashing the server.
func (s *Stack) Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "moat: handler panicked", "panic", fmt.Sprint(v), "path", r.URL.Path)
				httpjson.WriteError(w, http.StatusInternalServerError, "server_error", "internal error", nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Authenticate is the token and DPoP stage; it puts the principal in the
// request context (auth.PrincipalFrom).
func (s *Stack) Authenticate(next http.Handler) http.Handler { return s.resource.Authenticate(next) }

// DeviceCheck is the device status and app-version stage: a lost, stolen
// or disabled device, or a blocked version, is refused with 403 at once;
// a version under a notify-only minimum gets the notice header once per
// client. Tokens without a key (confidential clients) have no device and
// pass.
func (s *Stack) DeviceCheck(next http.Handler) http.Handler {
	checked := s.devices.Middleware(func(r *http.Request) (device.Client, bool) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			return device.Client{}, false
		}
		return device.Client{DeviceID: p.DeviceID, AppID: p.AppID, Platform: p.Platform, AppVersion: p.AppVersion, ClientID: p.ClientID}, true
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.PrincipalFrom(r.Context()); ok && p.KeyThumbprint == "" {
			next.ServeHTTP(w, r)
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// UpdateCheck is the mandatory-update stage: a client whose installed
// bundle version is older than a mandatory release for its app, platform
// and version is refused with 403 update_required. Without Config.Updates
// it lets everything through. Confidential clients have no app and pass.
func (s *Stack) UpdateCheck(next http.Handler) http.Handler {
	if s.updates == nil {
		return next
	}
	gated := s.updates.RequireUpdated(func(r *http.Request) (update.ClientState, error) {
		p, _ := auth.PrincipalFrom(r.Context())
		v, err := update.BundleVersionFrom(r)
		return update.ClientState{App: p.AppID, Platform: p.Platform, AppVersion: p.AppVersion, BundleVersion: v}, err
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.PrincipalFrom(r.Context()); !ok || p.KeyThumbprint == "" {
			next.ServeHTTP(w, r)
			return
		}
		gated.ServeHTTP(w, r)
	})
}

// Scope is the scope stage: every scope must have been granted, or 403
// insufficient_scope.
func (s *Stack) Scope(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(scopes) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := auth.PrincipalFrom(r.Context())
			if !ok {
				writeResourceError(w, r, &auth.ResourceError{Status: http.StatusUnauthorized})
				return
			}
			for _, sc := range scopes {
				if !p.HasScope(sc) {
					writeResourceError(w, r, &auth.ResourceError{Status: http.StatusForbidden, Code: auth.CodeInsufficientScope,
						Description: "the token lacks a required scope", Scope: scopes})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// StepUp is the step-up stage for policy p (see stepup.Policy).
func (s *Stack) StepUp(p stepup.Policy) (func(http.Handler) http.Handler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Now == nil {
		p.Now = s.cfg.Auth.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pr, ok := auth.PrincipalFrom(r.Context())
			if !ok {
				writeResourceError(w, r, &auth.ResourceError{Status: http.StatusUnauthorized})
				return
			}
			now := time.Now()
			if p.Now != nil {
				now = p.Now()
			}
			if re := p.Evaluate(pr, now); re != nil {
				if s.rec != nil {
					s.rec.Security(r.Context(), analytics.SecurityEvent{Kind: analytics.StepUpDemanded,
						Caller: callerOf(pr), Reason: strings.Join(p.ACRValues, " ")})
				}
				writeResourceError(w, r, re)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// writeResourceError answers a refusal of a later stage, carrying the
// version notice (device.NoticeField) when the device stage had one for
// this client, so an app that is refused for another reason still learns
// about its version.
func writeResourceError(w http.ResponseWriter, r *http.Request, re *auth.ResourceError) {
	if n, ok := device.NoticeFrom(r.Context()); ok {
		extra := make(map[string]any, len(re.Extra)+1)
		for k, v := range re.Extra {
			extra[k] = v
		}
		extra[device.NoticeField] = n
		cp := *re
		cp.Extra = extra
		re = &cp
	}
	auth.WriteResourceError(w, r, re)
}
