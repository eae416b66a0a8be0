package moat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/moatsec/moat/analytics"
	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/device"
	"github.com/moatsec/moat/pinning"
	"github.com/moatsec/moat/update"
)

// The capability packages expose hooks; the stack turns what they report
// into analytics events. No hook passes a secret: check names, policy
// names and reason codes only.

func (s *Stack) startAnalytics(cfg *Config) error {
	if cfg.AnalyticsAuthorize == nil {
		return errors.New("moat: Analytics needs AnalyticsAuthorize: analytics are for operators only")
	}
	ac := *cfg.Analytics
	ac.Identify = func(r *http.Request) analytics.Caller {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			return analytics.Caller{}
		}
		return callerOf(p)
	}
	if ac.Logger == nil {
		ac.Logger = cfg.Logger
	}
	var err error
	if s.rec, err = analytics.New(ac); err != nil {
		return fmt.Errorf("moat: analytics: %w", err)
	}
	if s.recAPI, err = analytics.NewHandler(s.rec, analytics.HandlerConfig{Authorize: cfg.AnalyticsAuthorize, Prefix: cfg.AnalyticsPrefix}); err != nil {
		return fmt.Errorf("moat: analytics: %w", err)
	}
	s.pinRep, err = pinning.NewReportHandler(pinning.ReportHandlerConfig{OnReport: func(ctx context.Context, r pinning.Report) {
		s.rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.PinViolation, Name: r.Host, Reason: string(r.Mode)})
	}})
	return err
}

func callerOf(p *auth.Principal) analytics.Caller {
	return analytics.Caller{AppID: p.AppID, AppVersion: p.AppVersion, Platform: p.Platform, Channel: p.Channel, DeviceID: p.DeviceID}
}

func clientCaller(c *auth.Client) analytics.Caller {
	if c == nil {
		return analytics.Caller{}
	}
	return analytics.Caller{AppID: c.AppID, AppVersion: c.AppVersion, Platform: c.Platform, Channel: c.Channel, DeviceID: c.DeviceID}
}

// authKinds maps auth's events to analytics kinds. Device and version
// refusals at authorization and refresh are reported by device control
// itself (onDevice), so auth's client_refused is not mapped again.
var authKinds = map[string]analytics.Kind{
	auth.EventRegistration:        analytics.RegistrationAccepted,
	auth.EventRegistrationRefused: analytics.RegistrationRefused,
	auth.EventChallengeIssued:     analytics.ChallengeIssued,
	auth.EventChallengeAnswered:   analytics.ChallengeAnswered,
	auth.EventChallengeFailed:     analytics.ChallengeFailed,
	auth.EventCheckRefused:        analytics.ChallengeFailed,
	auth.EventCheckBlocked:        analytics.CheckBlocked,
	auth.EventStepUpCompleted:     analytics.StepUpCompleted,
}

func (s *Stack) recordAuthEvent(ctx context.Context, e auth.Event) {
	if s.rec == nil {
		return
	}
	kind, ok := authKinds[e.Kind]
	if !ok {
		return
	}
	reason := e.Reason
	if e.Kind == auth.EventStepUpCompleted {
		reason = e.ACR
	}
	s.rec.Security(ctx, analytics.SecurityEvent{Kind: kind, Caller: clientCaller(e.Client), Name: e.Check, Reason: reason})
}

func (s *Stack) onDevice(ctx context.Context, e device.Event) {
	if e.Refusal == nil {
		return
	}
	c := analytics.Caller{AppID: e.Client.AppID, AppVersion: e.Client.AppVersion, Platform: e.Client.Platform, DeviceID: e.Client.DeviceID}
	kind, name := analytics.DeviceRefused, "device-status"
	if e.Refusal.Code == device.CodeAppVersionBlocked {
		kind, name = analytics.VersionRefused, "version-policy"
	}
	s.rec.Security(ctx, analytics.SecurityEvent{Kind: kind, Caller: c, Name: name, Reason: e.Refusal.Code})
}

func (s *Stack) onAttestation(ctx context.Context, reg *attest.Registration, res *attest.Result, err error) {
	c := analytics.Caller{AppID: reg.AppID, AppVersion: reg.AppVersion, Platform: reg.Platform, Channel: reg.Channel}
	var ae *attest.Error
	switch {
	case errors.As(err, &ae):
		s.rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.AttestationFailed, Caller: c, Reason: ae.Code})
	case err == nil && res != nil:
		s.rec.Security(ctx, analytics.SecurityEvent{Kind: analytics.AttestationPassed, Caller: c, Name: res.Format, Reason: string(res.Verdict)})
	}
}

// onUpdate counts a bundle served as an update applied: the client
// downloads a bundle to install it.
func (s *Stack) onUpdate(e update.Event) {
	if e.Kind != "download" || e.Offered == 0 {
		return
	}
	s.rec.Security(context.Background(), analytics.SecurityEvent{Kind: analytics.UpdateApplied,
		Caller: analytics.Caller{AppID: e.App, AppVersion: e.AppVersion, Platform: e.Platform},
		Name:   "bundle", Reason: strconv.FormatUint(e.Offered, 10)})
}
