package stepup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// TOTP defaults.
const (
	// DefaultSkew is how many 30-second steps before and after the current
	// one a TOTP code may belong to: 1 absorbs a phone clock a little off
	// and a code typed at the end of its step. Use SkewNone to accept only
	// the current step.
	DefaultSkew = 1
	// SkewNone, as TOTPConfig.Skew, accepts only the current step.
	SkewNone = -1
	// TOTPPeriod is the TOTP time step in seconds.
	TOTPPeriod = 30
	// DefaultEnrollTTL is how long an enrollment waits for its confirming
	// code.
	DefaultEnrollTTL = 10 * time.Minute
	// DefaultQRSize is the width and height of enrollment QR codes, in
	// pixels.
	DefaultQRSize = 256
)

// TOTPConfig configures [NewTOTPCheck].
type TOTPConfig struct {
	// Name is the check's name in the protocol (for example "TOTP").
	// Required.
	Name string
	// Issuer names the service in authenticator apps. Required.
	Issuer string
	// Enrollments keeps confirmed enrollments and last accepted steps.
	// Required.
	Enrollments OTPStore
	// Sealer encrypts seeds at rest. Required: in production a
	// *securestore.Sealer (securestore.NewSealer), whose keys can rotate;
	// MemorySealer only for tests, since its key dies with the process.
	Sealer Sealer
	// Store keeps pending enrollments and the attempt state. Required.
	Store kv.Store
	// Lockout sets the attempt budget per user; the zero value gives the
	// lockout defaults with the budget named after the check.
	Lockout LockoutConfig
	// Algorithm is the HMAC hash of new enrollments. "" means SHA1, the
	// only one every authenticator app supports.
	Algorithm Algorithm
	// Digits is the code length of new enrollments, 6 or 8. Zero means 6.
	Digits int
	// Skew is how many steps before and after the current one are
	// accepted. Zero means DefaultSkew (1); SkewNone accepts only the
	// current step; at most 2.
	Skew int
	// EnrollTTL is how long an enrollment waits for its confirming code.
	// Zero means DefaultEnrollTTL (10 min).
	EnrollTTL time.Duration
	// QRSize is the QR code's size in pixels. Zero means DefaultQRSize.
	QRSize int
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["otp"].
	AMR []string
}

// TOTPCheck is an RFC 6238 time-based one-time password check for users
// with an authenticator app. A user enrolls with [TOTPCheck.Enroll] (which
// returns the otpauth URI and a QR code) and [TOTPCheck.Confirm] (the first
// code). Each code is accepted once: the last accepted time step is kept
// per user and only a newer step passes, so a code cannot be replayed
// within its acceptance window, not even by a concurrent request.
//
// Challenge: {"digits":6,"period":30}, plus "reason" and "attempts_left"
// after a failure.
// Answer: {"code":"123456"}.
type TOTPCheck struct {
	otpCheck
	issuer    string
	store     kv.Store
	alg       Algorithm
	digits    int
	skew      int
	enrollTTL time.Duration
	qrSize    int
}

var _ auth.Check = (*TOTPCheck)(nil)

// NewTOTPCheck returns a TOTP check.
func NewTOTPCheck(cfg TOTPConfig) (*TOTPCheck, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: TOTP check needs an Issuer", ErrInvalidConfig)
	}
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, cfg.AMR, []string{AMROTP})
	if err != nil {
		return nil, err
	}
	oc, err := newOTPCheck(KindTOTP, b, cfg.Enrollments, cfg.Sealer)
	if err != nil {
		return nil, err
	}
	c := &TOTPCheck{otpCheck: oc, issuer: cfg.Issuer, store: cfg.Store, alg: or(cfg.Algorithm, SHA1),
		digits: or(cfg.Digits, 6), skew: or(cfg.Skew, DefaultSkew), enrollTTL: or(cfg.EnrollTTL, DefaultEnrollTTL),
		qrSize: or(cfg.QRSize, DefaultQRSize)}
	if c.alg != SHA1 && c.alg != SHA256 && c.alg != SHA512 {
		return nil, fmt.Errorf("%w: algorithm must be written SHA1, SHA256 or SHA512", ErrInvalidConfig)
	}
	if c.digits != 6 && c.digits != 8 {
		return nil, fmt.Errorf("%w: TOTP digits must be 6 or 8", ErrInvalidConfig)
	}
	if c.skew == SkewNone {
		c.skew = 0
	} else if c.skew < 0 || c.skew > 2 {
		return nil, fmt.Errorf("%w: TOTP skew must be SkewNone, 1 or 2", ErrInvalidConfig)
	}
	if c.enrollTTL < 0 || c.qrSize < 64 || c.qrSize > 2048 {
		return nil, fmt.Errorf("%w: EnrollTTL must be positive and QRSize 64..2048", ErrInvalidConfig)
	}
	return c, nil
}

// TOTPSetup is what a new enrollment shows the user, once.
type TOTPSetup struct {
	// URI is the otpauth:// URI (Google Authenticator key URI format).
	URI string
	// Secret is the seed in canonical base32, for manual entry.
	Secret string
	// QRCode is a PNG image of URI.
	QRCode []byte
	// ExpiresAt is when the enrollment lapses unless confirmed.
	ExpiresAt time.Time
}

// pendingTOTP is a started, unconfirmed enrollment, kept in kv.
type pendingTOTP struct {
	ID     string    `json:"id"`
	Sealed []byte    `json:"sealed"`
	Alg    Algorithm `json:"alg"`
	Digits int       `json:"digits"`
}

func (c *TOTPCheck) pendingKey(subject string) string {
	return "stepup:totp-enroll:" + c.name + ":" + digestKey(subject)
}

// Enroll starts a TOTP enrollment for subject with a fresh random seed
// (20, 32 or 64 bytes for SHA1, SHA256, SHA512), replacing any pending
// one. accountName is shown in the authenticator app next to the issuer
// (usually the username or e-mail address). The user's current
// enrollment, if any, keeps working until Confirm. The caller must have
// authenticated the user.
func (c *TOTPCheck) Enroll(ctx context.Context, subject, accountName string, now time.Time) (*TOTPSetup, error) {
	secret := make([]byte, c.alg.SeedSize())
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	defer clear(secret)
	return c.enroll(ctx, subject, accountName, secret, now)
}

// EnrollSecret is Enroll with a seed the user or an earlier system chose
// (a migration, a seed typed from another app). The secret is normalized:
// upper or lower case, with or without padding, spaces and hyphens are
// accepted, and TOTPSetup.Secret gives its canonical form. An empty
// secret, a character outside the base32 alphabet, or a seed shorter than
// 16 bytes (RFC 4226 R6) is refused with ErrInvalidSecret.
func (c *TOTPCheck) EnrollSecret(ctx context.Context, subject, accountName, secret string, now time.Time) (*TOTPSetup, error) {
	b, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: shorter than 128 bits", ErrInvalidSecret)
	}
	return c.enroll(ctx, subject, accountName, b, now)
}

func (c *TOTPCheck) enroll(ctx context.Context, subject, accountName string, secret []byte, now time.Time) (*TOTPSetup, error) {
	if subject == "" || accountName == "" {
		return nil, errors.New("moat/stepup: TOTP enrollment needs a subject and an account name")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: c.issuer, AccountName: accountName, Period: TOTPPeriod,
		Secret: secret, Digits: otp.Digits(c.digits), Algorithm: c.alg.pquerna()})
	if err != nil {
		return nil, fmt.Errorf("moat/stepup: making otpauth URI: %w", err)
	}
	img, err := key.Image(c.qrSize, c.qrSize)
	if err != nil {
		return nil, fmt.Errorf("moat/stepup: making QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return nil, fmt.Errorf("moat/stepup: encoding QR code: %w", err)
	}
	id, err := newEnrollmentID()
	if err != nil {
		return nil, err
	}
	sealed, err := c.seal(ctx, KindTOTP, subject, id, secret)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(pendingTOTP{ID: id, Sealed: sealed, Alg: c.alg, Digits: c.digits})
	if err != nil {
		return nil, err
	}
	if _, err := c.store.Set(ctx, c.pendingKey(subject), b, c.enrollTTL); err != nil {
		return nil, fmt.Errorf("moat/stepup: storing pending enrollment: %w", err)
	}
	return &TOTPSetup{URI: key.URL(), Secret: EncodeSecret(secret), QRCode: qr.Bytes(), ExpiresAt: now.Add(c.enrollTTL)}, nil
}

// Confirm completes subject's pending enrollment with a first code from
// the app. The code's time step is consumed: the same code cannot then
// sign in. A wrong code gives ErrWrongCode; the attempts count in the
// check's lockout (a blocked user gets a *BlockedError); no pending
// enrollment gives ErrNoPendingEnrollment.
func (c *TOTPCheck) Confirm(ctx context.Context, subject, code string, now time.Time) error {
	pk := c.pendingKey(subject)
	it, err := c.store.Get(ctx, pk)
	if errors.Is(err, kv.ErrNotFound) {
		return ErrNoPendingEnrollment
	}
	if err != nil {
		return fmt.Errorf("moat/stepup: reading pending enrollment: %w", err)
	}
	var p pendingTOTP
	if err := json.Unmarshal(it.Value, &p); err != nil || p.ID == "" {
		return ErrNoPendingEnrollment
	}
	e := OTPEnrollment{Subject: subject, Kind: KindTOTP, ID: p.ID, SealedSecret: p.Sealed, Algorithm: p.Alg,
		Digits: p.Digits, Period: TOTPPeriod, CreatedAt: now}
	var lost bool
	out, err := c.lock.Try(ctx, "user:"+subject, now, func(ctx context.Context) (bool, error) {
		k, err := c.key(ctx, e)
		if err != nil {
			return false, err
		}
		step, ok := k.VerifyTOTP(code, now, c.skew, -1)
		clear(k.Secret)
		if !ok {
			return false, nil
		}
		// Exactly one confirmation wins the pending enrollment.
		if _, err := c.store.CompareAndSet(ctx, pk, []byte(`{}`), time.Second, it.Version); errors.Is(err, kv.ErrConflict) {
			lost = true
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("moat/stepup: claiming pending enrollment: %w", err)
		}
		e.Counter = step
		if err := c.enrollments.Put(ctx, e); err != nil {
			return false, fmt.Errorf("moat/stepup: storing enrollment: %w", err)
		}
		return true, nil
	})
	switch {
	case err != nil:
		return err
	case out.OK:
		return nil
	case lost:
		return ErrNoPendingEnrollment
	case out.Blocked:
		return &BlockedError{Until: out.BlockedUntil}
	}
	return ErrWrongCode
}

// Authorize implements auth.Check.
func (c *TOTPCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	return c.authorize(ctx, req, func(k OTPKey, e OTPEnrollment, code string) (int64, bool) {
		return k.VerifyTOTP(code, req.Now, c.skew, e.Counter)
	})
}
