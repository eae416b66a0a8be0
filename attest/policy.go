package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// maxAttestation bounds the size of the wire object a policy reads.
const maxAttestation = 256 << 10

// Requirement says whether a rule demands an attestation.
type Requirement int

// Requirements. The zero value, Required, is the safe one.
const (
	// Required: registration without an accepted attestation is refused.
	Required Requirement = iota
	// Optional: registration without attestation is accepted (verdict
	// "absent"); one that is sent must verify, or registration is refused.
	Optional
	// Off: attestation is not asked for; anything sent is ignored
	// (verdict "off").
	Off
)

func (r Requirement) String() string {
	switch r {
	case Required:
		return "required"
	case Optional:
		return "optional"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Requirement(%d)", int(r))
}

// Rule is the attestation policy for one app on one platform.
type Rule struct {
	// AppID is the app the rule covers (as the client declares it). ""
	// covers every app that has no rule of its own.
	AppID string
	// Platform is the platform the rule covers ("ios", "android", ...).
	// "" covers every platform that has no rule of its own.
	Platform string
	// Requirement: zero means Required.
	Requirement Requirement
	// Verifiers are the formats accepted, one verifier per format.
	// Required unless Requirement is Off.
	Verifiers []Verifier
}

// Registration is what the registration endpoint passes to the policy.
type Registration struct {
	// AppID, AppVersion, Platform and Channel are as the client declared.
	AppID      string
	AppVersion string
	Platform   string
	Channel    string
	// Nonce is the server nonce the client obtained and the endpoint
	// consumed (single use). Required.
	Nonce string
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of the
	// client's DPoP public key. Required.
	KeyThumbprint string
	// Attestation is the request's "attestation" member as sent, or nil.
	Attestation json.RawMessage
}

// PolicyConfig configures [NewPolicy].
type PolicyConfig struct {
	// Rules map apps and platforms to requirements and verifiers.
	// Required. A registration matches the most specific rule: app and
	// platform, then app, then platform, then the rule with neither. A
	// registration no rule matches is refused.
	Rules []Rule
	// OnResult, if not nil, is called once per Verify with the result or
	// the error, for analytics. It must not block.
	OnResult func(ctx context.Context, reg *Registration, res *Result, err error)
}

// Policy decides registrations by their attestation: the registration
// policy of the backbone, adapted by the root package. It is safe for
// concurrent use.
type Policy struct {
	rules    map[ruleKey]*Rule
	onResult func(context.Context, *Registration, *Result, error)
}

type ruleKey struct{ app, platform string }

// NewPolicy returns a policy.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	if len(cfg.Rules) == 0 {
		return nil, errors.New("moat/attest: a policy needs rules")
	}
	p := &Policy{rules: make(map[ruleKey]*Rule), onResult: cfg.OnResult}
	for i := range cfg.Rules {
		r := cfg.Rules[i]
		k := ruleKey{r.AppID, r.Platform}
		if _, dup := p.rules[k]; dup {
			return nil, fmt.Errorf("moat/attest: two rules for app %q platform %q", r.AppID, r.Platform)
		}
		if r.Requirement < Required || r.Requirement > Off {
			return nil, fmt.Errorf("moat/attest: rule for app %q platform %q: unknown requirement %d", r.AppID, r.Platform, r.Requirement)
		}
		if r.Requirement != Off && len(r.Verifiers) == 0 {
			return nil, fmt.Errorf("moat/attest: rule for app %q platform %q needs verifiers", r.AppID, r.Platform)
		}
		seen := map[string]bool{}
		for _, v := range r.Verifiers {
			if v == nil {
				return nil, fmt.Errorf("moat/attest: rule for app %q platform %q has a nil verifier", r.AppID, r.Platform)
			}
			if seen[v.Format()] {
				return nil, fmt.Errorf("moat/attest: rule for app %q platform %q has two %s verifiers", r.AppID, r.Platform, v.Format())
			}
			seen[v.Format()] = true
		}
		r.Verifiers = append([]Verifier(nil), r.Verifiers...)
		p.rules[k] = &r
	}
	return p, nil
}

func (p *Policy) rule(app, platform string) *Rule {
	for _, k := range []ruleKey{{app, platform}, {app, ""}, {"", platform}, {"", ""}} {
		if r, ok := p.rules[k]; ok {
			return r
		}
	}
	return nil
}

// Verify judges reg's attestation. It returns a Result (Verdict says
// verified, insecure-development, absent or off) to record on the client,
// an [*Error] to refuse the registration with (Code is
// invalid_attestation or attestation_required), or another error when it
// could not decide (answer 503).
func (p *Policy) Verify(ctx context.Context, reg Registration) (*Result, error) {
	res, err := p.verify(ctx, &reg)
	if p.onResult != nil {
		p.onResult(ctx, &reg, res, err)
	}
	return res, err
}

func (p *Policy) verify(ctx context.Context, reg *Registration) (*Result, error) {
	r := p.rule(reg.AppID, reg.Platform)
	if r == nil {
		return nil, refuse(ErrNoRule, "app %q platform %q", reg.AppID, reg.Platform)
	}
	if r.Requirement == Off {
		return &Result{Verdict: VerdictOff}, nil
	}
	raw := bytes.TrimSpace(reg.Attestation)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if r.Requirement == Optional {
			return &Result{Verdict: VerdictAbsent}, nil
		}
		return nil, &Error{Code: CodeAttestationRequired, Reason: ErrAttestationRequired,
			Detail: fmt.Sprintf("app %q platform %q", reg.AppID, reg.Platform)}
	}
	if len(raw) > maxAttestation {
		return nil, refuse(ErrMalformed, "attestation of %d bytes", len(raw))
	}
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, refuse(ErrMalformed, "attestation is not a JSON object: %v", err)
	}
	var v Verifier
	for _, c := range r.Verifiers {
		if c.Format() == head.Format {
			v = c
		}
	}
	if v == nil {
		return nil, refuse(ErrUnknownFormat, "%q for app %q platform %q", head.Format, reg.AppID, reg.Platform)
	}
	ch, err := Challenge(reg.Nonce, reg.KeyThumbprint)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, &Evidence{Attestation: raw, Challenge: ch, KeyThumbprint: reg.KeyThumbprint, AppID: reg.AppID})
}
