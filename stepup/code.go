package stepup

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// Channels a one-time code is sent on.
const (
	ChannelSMS   = "sms"
	ChannelEmail = "email"
)

// Defaults of the SMS and e-mail code checks.
const (
	// CodeDigits is the length of a sent one-time code.
	CodeDigits = 6
	// DefaultCodeTTL is how long a sent code can be used.
	DefaultCodeTTL = 5 * time.Minute
	// DefaultResendAfter is the shortest time between two sends in one
	// auth session.
	DefaultResendAfter = 30 * time.Second
	// DefaultMaxSends is how many codes one user may be sent within
	// DefaultSendWindow, over all sessions.
	DefaultMaxSends = 5
	// DefaultSendWindow is the window MaxSends counts in.
	DefaultSendWindow = time.Hour
)

// Message is a one-time code to deliver.
type Message struct {
	// Channel is ChannelSMS or ChannelEmail.
	Channel string
	// To is the phone number or e-mail address.
	To string
	// Code is the one-time code. It is a secret: never log it.
	Code string
	// User is the subject the code was sent for.
	User string
	// Check is the name of the check that sent it.
	Check string
	// ExpiresAt is when the code stops working.
	ExpiresAt time.Time
}

// Sender delivers one-time codes (an SMS gateway, a mail server).
// [Outbox] is an in-memory sender for tests and development.
type Sender interface {
	// Send delivers m. An error fails the check with that error (503);
	// the code is withdrawn.
	Send(ctx context.Context, m Message) error
}

// Destinations finds where to send a user's codes.
type Destinations interface {
	// Destination returns subject's phone number (SMS) or e-mail address,
	// ErrNoDestination when the user has none (the check refuses), or
	// another error (503).
	Destination(ctx context.Context, subject string) (string, error)
}

// DestinationMap is a fixed [Destinations] for tests and examples:
// subject → phone number or address.
type DestinationMap map[string]string

var _ Destinations = DestinationMap(nil)

// Destination implements [Destinations].
func (m DestinationMap) Destination(_ context.Context, subject string) (string, error) {
	if d, ok := m[subject]; ok && d != "" {
		return d, nil
	}
	return "", ErrNoDestination
}

// CodeConfig configures [NewSMSCheck] and [NewEmailCheck].
type CodeConfig struct {
	// Name is the check's name in the protocol (for example "SMSOTP").
	// Required.
	Name string
	// Store keeps pending codes (as keyed hashes only), send counters and
	// the attempt state. Required.
	Store kv.Store
	// Sender delivers the codes. Required.
	Sender Sender
	// Destinations finds each user's phone number or address. Required.
	Destinations Destinations
	// HashKey keys the HMAC-SHA256 under which pending codes are stored.
	// Several server instances sharing a store must share it (at least 32
	// bytes from a secret store). Nil means a random key made at
	// construction: right for one instance; with several, a code can only
	// be checked by the instance that sent it (it fails closed).
	HashKey []byte
	// Lockout sets the attempt budget per user; the zero value gives the
	// lockout defaults with the budget named after the check.
	Lockout LockoutConfig
	// TTL is how long a code works. Zero means DefaultCodeTTL (5 min); at
	// most 15 minutes.
	TTL time.Duration
	// ResendAfter is the shortest time between sends in one session. Zero
	// means DefaultResendAfter (30 s).
	ResendAfter time.Duration
	// MaxSends is how many codes one user may be sent within SendWindow.
	// Zero means DefaultMaxSends (5).
	MaxSends int
	// SendWindow is the window MaxSends counts in, from the first send.
	// Zero means DefaultSendWindow (1 h).
	SendWindow time.Duration
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["sms"] for SMS and
	// ["email"] for e-mail.
	AMR []string
}

// CodeCheck sends a one-time code by SMS or e-mail to the user an earlier
// check in the session identified, and accepts it once. Codes are 6 digits
// from crypto/rand, stored only as an HMAC, bound to the auth session,
// valid for 5 minutes and compared in constant time. Failures count per
// user across sessions; resends are rate-limited per session and per user.
//
// Challenge: {"channel":"sms","to":"+*********12","length":6,
// "expires_in":300,"resend_in":30}, plus "reason" and "attempts_left"
// after a failure.
// Answer: {"code":"123456"}, or {"resend":true} for a new code.
type CodeCheck struct {
	base
	channel     string
	store       kv.Store
	sender      Sender
	dest        Destinations
	key         []byte
	ttl         time.Duration
	resendAfter time.Duration
	maxSends    int
	sendWindow  time.Duration
}

var _ auth.Check = (*CodeCheck)(nil)

// NewSMSCheck returns a check that sends its codes by SMS.
func NewSMSCheck(cfg CodeConfig) (*CodeCheck, error) {
	return newCodeCheck(ChannelSMS, cfg, AMRSMS)
}

// NewEmailCheck returns a check that sends its codes by e-mail.
func NewEmailCheck(cfg CodeConfig) (*CodeCheck, error) {
	return newCodeCheck(ChannelEmail, cfg, AMREmail)
}

func newCodeCheck(channel string, cfg CodeConfig, amr string) (*CodeCheck, error) {
	if cfg.Sender == nil || cfg.Destinations == nil {
		return nil, fmt.Errorf("%w: code check needs a Sender and Destinations", ErrInvalidConfig)
	}
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, cfg.AMR, []string{amr})
	if err != nil {
		return nil, err
	}
	if cfg.TTL < 0 || cfg.ResendAfter < 0 || cfg.MaxSends < 0 || cfg.SendWindow < 0 {
		return nil, fmt.Errorf("%w: code check limits must not be negative", ErrInvalidConfig)
	}
	c := &CodeCheck{base: b, channel: channel, store: cfg.Store, sender: cfg.Sender, dest: cfg.Destinations,
		ttl: or(cfg.TTL, DefaultCodeTTL), resendAfter: or(cfg.ResendAfter, DefaultResendAfter),
		maxSends: or(cfg.MaxSends, DefaultMaxSends), sendWindow: or(cfg.SendWindow, DefaultSendWindow)}
	if c.ttl > 15*time.Minute {
		return nil, fmt.Errorf("%w: code TTL above 15 minutes", ErrInvalidConfig)
	}
	switch {
	case cfg.HashKey == nil:
		c.key = make([]byte, 32)
		if _, err := rand.Read(c.key); err != nil {
			return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
		}
	case len(cfg.HashKey) < 32:
		return nil, fmt.Errorf("%w: HashKey shorter than 32 bytes", ErrInvalidConfig)
	default:
		c.key = append([]byte(nil), cfg.HashKey...)
	}
	return c, nil
}

// or returns v, or def when v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// CodeChallenge is the code checks' challenge.
type CodeChallenge struct {
	Channel      string `json:"channel"`
	To           string `json:"to"`
	Length       int    `json:"length"`
	ExpiresIn    int    `json:"expires_in"`
	ResendIn     int    `json:"resend_in"`
	Reason       string `json:"reason,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

// CodeAnswer is the answer the code checks expect: a code, or a request
// for a new one.
type CodeAnswer struct {
	Code   string `json:"code,omitempty"`
	Resend bool   `json:"resend,omitempty"`
}

// pendingCode is what the store holds for a session's live code.
type pendingCode struct {
	MAC     []byte `json:"h"`
	Subject string `json:"s"`
	To      string `json:"to"` // masked
	Sent    int64  `json:"sent"`
	Expires int64  `json:"exp"`
	Used    bool   `json:"used,omitempty"`
}

func (c *CodeCheck) pendingKey(session string) string {
	return "stepup:code:" + c.name + ":" + digestKey(session)
}

func digestKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func (c *CodeCheck) mac(session, subject, code string) []byte {
	m := hmac.New(sha256.New, c.key)
	for _, s := range []string{c.name, session, subject, code} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (c *CodeCheck) challengeFor(p pendingCode, now time.Time, reason string, left *int) CodeChallenge {
	exp := time.Unix(0, p.Expires)
	resend := time.Unix(0, p.Sent).Add(c.resendAfter)
	return CodeChallenge{Channel: c.channel, To: p.To, Length: CodeDigits, ExpiresIn: ceilSeconds(exp.Sub(now)),
		ResendIn: ceilSeconds(resend.Sub(now)), Reason: reason, AttemptsLeft: left}
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Authorize implements auth.Check.
func (c *CodeCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Subject == "" {
		return refused(ReasonSubjectRequired), nil
	}
	if req.SessionID == "" {
		return auth.CheckResult{}, errors.New("moat/stepup: code check needs the auth session id")
	}
	key := c.pendingKey(req.SessionID)
	p, version, err := c.loadPending(ctx, key)
	if err != nil {
		return auth.CheckResult{}, err
	}
	live := version != 0 && !p.Used && p.Subject == req.Subject && req.Now.Before(time.Unix(0, p.Expires))
	if !hasAnswer(req.Answer) {
		if live {
			return challenge(c.challengeFor(p, req.Now, "", nil), ""), nil
		}
		return c.send(ctx, req, "")
	}
	var a CodeAnswer
	if err := decodeAnswer(req.Answer, &a); err != nil || (a.Code == "") == !a.Resend {
		if live {
			return challenge(c.challengeFor(p, req.Now, ReasonMalformed, nil), ReasonMalformed), nil
		}
		return c.send(ctx, req, ReasonMalformed)
	}
	if a.Resend {
		if live && req.Now.Before(time.Unix(0, p.Sent).Add(c.resendAfter)) {
			return challenge(c.challengeFor(p, req.Now, ReasonResendTooSoon, nil), ReasonResendTooSoon), nil
		}
		return c.send(ctx, req, "")
	}
	if !live {
		return c.send(ctx, req, ReasonExpired)
	}
	out, err := c.lock.Try(ctx, "user:"+req.Subject, req.Now, func(ctx context.Context) (bool, error) {
		if !validDigits(a.Code, CodeDigits) {
			return false, nil
		}
		if !hmac.Equal(c.mac(req.SessionID, req.Subject, a.Code), p.MAC) {
			return false, nil
		}
		used := p
		used.Used = true
		b, _ := json.Marshal(used)
		_, err := c.store.CompareAndSet(ctx, key, b, max(time.Unix(0, p.Expires).Sub(req.Now), time.Second), version)
		if errors.Is(err, kv.ErrConflict) {
			return false, nil // used by a concurrent answer, or replaced by a resend
		}
		if err != nil {
			return false, fmt.Errorf("moat/stepup: using code: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	return c.outcome(out, req.Subject, ReasonWrongCode, func(reason string, left int) any {
		return c.challengeFor(p, req.Now, reason, &left)
	}), nil
}

func (c *CodeCheck) loadPending(ctx context.Context, key string) (pendingCode, uint64, error) {
	it, err := c.store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return pendingCode{}, 0, nil
	}
	if err != nil {
		return pendingCode{}, 0, fmt.Errorf("moat/stepup: reading pending code: %w", err)
	}
	var p pendingCode
	if err := json.Unmarshal(it.Value, &p); err != nil {
		return pendingCode{}, 0, fmt.Errorf("moat/stepup: pending code record is corrupt")
	}
	return p, it.Version, nil
}

// send issues a new code for the session (replacing any previous one),
// within the per-user send budget.
func (c *CodeCheck) send(ctx context.Context, req *auth.CheckRequest, reason string) (auth.CheckResult, error) {
	st, err := c.lock.State(ctx, "user:"+req.Subject, req.Now)
	if err != nil {
		return auth.CheckResult{}, err
	}
	if st.Blocked {
		return blocked(st.BlockedUntil, false), nil
	}
	sk := "stepup:sends:" + c.name + ":" + digestKey(req.Subject)
	n, err := c.store.Increment(ctx, sk, 1, c.sendWindow)
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: counting sends: %w", err)
	}
	if n > int64(c.maxSends) {
		until := req.Now.Add(c.sendWindow)
		if it, err := c.store.Get(ctx, sk); err == nil {
			until = it.ExpiresAt
		}
		return auth.CheckResult{Status: auth.CheckBlocked, BlockedUntil: until, Reason: ReasonSendLimit}, nil
	}
	to, err := c.dest.Destination(ctx, req.Subject)
	if errors.Is(err, ErrNoDestination) {
		return refused(ReasonNotEnrolled), nil
	}
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: looking up destination: %w", err)
	}
	code, err := randomDigits(CodeDigits)
	if err != nil {
		return auth.CheckResult{}, err
	}
	exp := req.Now.Add(c.ttl)
	p := pendingCode{MAC: c.mac(req.SessionID, req.Subject, code), Subject: req.Subject, To: maskDestination(c.channel, to),
		Sent: req.Now.UnixNano(), Expires: exp.UnixNano()}
	b, err := json.Marshal(p)
	if err != nil {
		return auth.CheckResult{}, err
	}
	key := c.pendingKey(req.SessionID)
	if _, err := c.store.Set(ctx, key, b, c.ttl); err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: storing code: %w", err)
	}
	m := Message{Channel: c.channel, To: to, Code: code, User: req.Subject, Check: c.name, ExpiresAt: exp}
	if err := c.sender.Send(ctx, m); err != nil {
		_ = c.store.Delete(context.WithoutCancel(ctx), key)
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: sending code: %w", err)
	}
	var left *int
	if reason != "" {
		left = &st.AttemptsLeft
	}
	return challenge(c.challengeFor(p, req.Now, reason, left), reason), nil
}

// randomDigits returns n uniformly random decimal digits from crypto/rand.
func randomDigits(n int) (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v.Int64()), nil
}

// validDigits reports whether s is exactly n ASCII digits.
func validDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maskDestination hides most of a phone number or address, for the
// challenge: "+*********12", "a***@example.com".
func maskDestination(channel, to string) string {
	if channel == ChannelEmail {
		local, domain, ok := strings.Cut(to, "@")
		if !ok || local == "" {
			return "***"
		}
		return local[:1] + "***@" + domain
	}
	r := []rune(to)
	for i := range r {
		if i < len(r)-2 && r[i] != '+' {
			r[i] = '*'
		}
	}
	return string(r)
}
