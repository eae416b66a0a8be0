package stepup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// ChannelConfig configures [NewByChannel].
type ChannelConfig struct {
	// Name is the check's name in the protocol (for example "Login").
	// Required.
	Name string
	// Store keeps each session's progress through a method's steps.
	// Required.
	Store kv.Store
	// Methods maps a client channel ("phone", "watch", "web", ...) to the
	// checks that sign a user in on it, run in order (phone: a device key;
	// watch: a PIN; web: password then TOTP). At least one channel.
	Methods map[string][]auth.Check
	// Apps overrides Methods per app id, then per channel. Nil means every
	// app uses Methods.
	Apps map[string]map[string][]auth.Check
	// Default is the method for a channel none of the above names. Nil
	// means such clients are refused (reason "no_method_for_channel").
	Default []auth.Check
	// SessionTTL is how long a session's progress is kept. Zero means 15
	// minutes.
	SessionTTL time.Duration
}

// ByChannel is a check with several methods: it picks the one configured
// for the client's app and channel (req.Client.AppID and Channel) and runs
// its checks in order, carrying the subject the first ones established to
// the next. Its success carries the combined AMR (see [CombineAMR]), the
// shortest ValidFor of its steps, and the subject.
//
// Challenge: {"method":"<inner check name>","step":1,"steps":2,
// "challenge":{<the inner check's challenge>}}.
// Answer: {"method":"<inner check name>","answer":{<the inner check's
// answer>}}. An answer for another method than the current step's is
// ignored (the current challenge is sent again).
type ByChannel struct {
	name    string
	store   kv.Store
	methods map[string][]auth.Check
	apps    map[string]map[string][]auth.Check
	def     []auth.Check
	ttl     time.Duration
}

var _ auth.Check = (*ByChannel)(nil)

// NewByChannel returns a channel-aware check.
func NewByChannel(cfg ChannelConfig) (*ByChannel, error) {
	if cfg.Name == "" || cfg.Store == nil {
		return nil, fmt.Errorf("%w: channel check needs a Name and a Store", ErrInvalidConfig)
	}
	if len(cfg.Methods) == 0 && len(cfg.Apps) == 0 {
		return nil, fmt.Errorf("%w: channel check %s has no methods", ErrInvalidConfig, cfg.Name)
	}
	valid := func(cs []auth.Check) error {
		if len(cs) == 0 {
			return fmt.Errorf("%w: channel check %s: a method with no checks", ErrInvalidConfig, cfg.Name)
		}
		for _, c := range cs {
			if c == nil || c.Name() == "" {
				return fmt.Errorf("%w: channel check %s: a nil or unnamed check", ErrInvalidConfig, cfg.Name)
			}
		}
		return nil
	}
	b := &ByChannel{name: cfg.Name, store: cfg.Store, methods: map[string][]auth.Check{}, apps: map[string]map[string][]auth.Check{},
		ttl: or(cfg.SessionTTL, 15*time.Minute)}
	for ch, cs := range cfg.Methods {
		if err := valid(cs); err != nil {
			return nil, err
		}
		b.methods[ch] = slices.Clone(cs)
	}
	for app, m := range cfg.Apps {
		b.apps[app] = map[string][]auth.Check{}
		for ch, cs := range m {
			if err := valid(cs); err != nil {
				return nil, err
			}
			b.apps[app][ch] = slices.Clone(cs)
		}
	}
	if cfg.Default != nil {
		if err := valid(cfg.Default); err != nil {
			return nil, err
		}
		b.def = slices.Clone(cfg.Default)
	}
	if b.ttl < 0 {
		return nil, fmt.Errorf("%w: SessionTTL must not be negative", ErrInvalidConfig)
	}
	return b, nil
}

// Name implements auth.Check.
func (b *ByChannel) Name() string { return b.name }

// Method returns the checks configured for an app and channel, or nil.
func (b *ByChannel) Method(appID, channel string) []auth.Check {
	if m, ok := b.apps[appID]; ok {
		if cs, ok := m[channel]; ok {
			return cs
		}
	}
	if cs, ok := b.methods[channel]; ok {
		return cs
	}
	return b.def
}

// ChannelChallenge is the channel check's challenge.
type ChannelChallenge struct {
	Method    string `json:"method"`
	Step      int    `json:"step"`
	Steps     int    `json:"steps"`
	Challenge any    `json:"challenge"`
}

// ChannelAnswer is the answer the channel check expects.
type ChannelAnswer struct {
	Method string          `json:"method"`
	Answer json.RawMessage `json:"answer"`
}

// channelProgress is a session's progress through a method.
type channelProgress struct {
	Done     int           `json:"done"`
	Subject  string        `json:"sub,omitempty"`
	AMR      []string      `json:"amr,omitempty"`
	ValidFor time.Duration `json:"valid_for,omitempty"`
	Method   []string      `json:"method"`
}

// Authorize implements auth.Check.
func (b *ByChannel) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Client == nil {
		return refused(ReasonNoMethod), nil
	}
	checks := b.Method(req.Client.AppID, req.Client.Channel)
	if len(checks) == 0 {
		return refused(ReasonNoMethod), nil
	}
	if req.SessionID == "" {
		return auth.CheckResult{}, errors.New("moat/stepup: channel check needs the auth session id")
	}
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name()
	}
	key := "stepup:channel:" + b.name + ":" + digestKey(req.SessionID)
	it, err := b.store.Get(ctx, key)
	var p channelProgress
	var version uint64
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: reading channel progress: %w", err)
	default:
		if json.Unmarshal(it.Value, &p) != nil || !slices.Equal(p.Method, names) || p.Done >= len(checks) ||
			(req.Subject != "" && p.Subject != "" && p.Subject != req.Subject) {
			p = channelProgress{} // another method (config changed) or a corrupt record: start over
		}
		version = it.Version
	}
	p.Method = names
	if p.Subject == "" {
		p.Subject = req.Subject
	}
	var answer json.RawMessage
	if hasAnswer(req.Answer) {
		var a ChannelAnswer
		if err := decodeAnswer(req.Answer, &a); err == nil && a.Method == names[p.Done] {
			answer = a.Answer
		}
	}
	for {
		step := checks[p.Done]
		sub := *req
		sub.Subject, sub.Answer = p.Subject, answer
		r, err := step.Authorize(ctx, &sub)
		if err != nil {
			return auth.CheckResult{}, err
		}
		switch r.Status {
		case auth.CheckChallenge:
			r.Challenge = ChannelChallenge{Method: step.Name(), Step: p.Done + 1, Steps: len(checks), Challenge: r.Challenge}
			return r, nil
		case auth.CheckBlocked, auth.CheckRefused:
			return r, nil
		case auth.CheckSuccess:
		default:
			return auth.CheckResult{}, fmt.Errorf("moat/stepup: check %s answered status %v", step.Name(), r.Status)
		}
		if r.Subject != "" {
			if p.Subject != "" && r.Subject != p.Subject {
				return refused(ReasonSubjectMismatch), nil
			}
			p.Subject = r.Subject
		}
		p.AMR = CombineAMR(p.AMR, r.AMR)
		if p.ValidFor == 0 || (r.ValidFor > 0 && r.ValidFor < p.ValidFor) {
			p.ValidFor = r.ValidFor
		}
		p.Done++
		if p.Done == len(checks) {
			if err := b.store.Delete(ctx, key); err != nil {
				return auth.CheckResult{}, fmt.Errorf("moat/stepup: clearing channel progress: %w", err)
			}
			if p.ValidFor <= 0 {
				p.ValidFor = DefaultValidFor
			}
			return auth.CheckResult{Status: auth.CheckSuccess, Subject: p.Subject, AMR: p.AMR, ValidFor: p.ValidFor}, nil
		}
		// Record the step, so a later request starts at the next one. Of
		// concurrent answers to one step, only one advances.
		v, err := json.Marshal(p)
		if err != nil {
			return auth.CheckResult{}, err
		}
		if version, err = b.store.CompareAndSet(ctx, key, v, b.ttl, version); errors.Is(err, kv.ErrConflict) {
			return auth.CheckResult{}, fmt.Errorf("moat/stepup: concurrent answers to channel check %s", b.name)
		} else if err != nil {
			return auth.CheckResult{}, fmt.Errorf("moat/stepup: storing channel progress: %w", err)
		}
		answer = nil // the next step starts with its challenge
	}
}
