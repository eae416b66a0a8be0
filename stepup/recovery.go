package stepup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// DefaultRecoveryCodes is how many recovery codes Generate makes when
// RecoveryConfig.Count is zero.
const DefaultRecoveryCodes = 10

// RecoveryStore keeps the digests of users' unused recovery codes: a
// durable store (PostgreSQL in production, [MemoryRecoveryStore] for
// tests), checked by the conformance suite in package stepuptest.
type RecoveryStore interface {
	// Replace stores subject's set of code digests, replacing any
	// previous set (an empty set removes them all).
	Replace(ctx context.Context, subject string, digests [][]byte) error
	// Use removes digest from subject's set in one atomic step: of
	// concurrent callers with the same digest exactly one succeeds; the
	// others, and callers with a digest not in the set, get ErrNotFound.
	Use(ctx context.Context, subject string, digest []byte) error
	// Count returns how many codes subject has left (0 when none).
	Count(ctx context.Context, subject string) (int, error)
}

// RecoveryConfig configures [NewRecoveryCheck].
type RecoveryConfig struct {
	// Name is the check's name in the protocol. Required.
	Name string
	// Codes keeps the code digests. Required.
	Codes RecoveryStore
	// Store keeps the attempt state. Required.
	Store kv.Store
	// Lockout sets the attempt budget per user; the zero value gives the
	// lockout defaults with the budget named after the check.
	Lockout LockoutConfig
	// Count is how many codes Generate makes. Zero means
	// DefaultRecoveryCodes (10); at most 100.
	Count int
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["recovery"].
	AMR []string
}

// RecoveryCheck accepts single-use recovery codes, for users who lost
// their second factor. Codes are generated once and shown once
// ([RecoveryCheck.Generate]); only their SHA-256 digests (salted with the
// user's subject) are stored. A code has 80 random bits, written as 16
// characters of Crockford's base32 in groups of four (7KQ2-M9XD-4HTR-0BWE);
// entry is forgiving: any case, without hyphens, O for 0 and I or L for 1.
//
// Challenge: {"format":"XXXX-XXXX-XXXX-XXXX"}, plus "reason" and
// "attempts_left" after a failure.
// Answer: {"code":"7KQ2-M9XD-4HTR-0BWE"}.
type RecoveryCheck struct {
	base
	codes RecoveryStore
	count int
}

var _ auth.Check = (*RecoveryCheck)(nil)

// NewRecoveryCheck returns a recovery-code check.
func NewRecoveryCheck(cfg RecoveryConfig) (*RecoveryCheck, error) {
	if cfg.Codes == nil {
		return nil, fmt.Errorf("%w: recovery check needs Codes", ErrInvalidConfig)
	}
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, cfg.AMR, []string{AMRRecoveryCode})
	if err != nil {
		return nil, err
	}
	c := &RecoveryCheck{base: b, codes: cfg.Codes, count: or(cfg.Count, DefaultRecoveryCodes)}
	if c.count < 1 || c.count > 100 {
		return nil, fmt.Errorf("%w: recovery Count must be 1..100", ErrInvalidConfig)
	}
	return c, nil
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Generate makes a new set of codes for subject, replacing the old set,
// and returns them for the user to write down. They are not stored and
// cannot be shown again.
func (c *RecoveryCheck) Generate(ctx context.Context, subject string) ([]string, error) {
	if subject == "" {
		return nil, errors.New("moat/stepup: recovery codes need a subject")
	}
	codes := make([]string, c.count)
	digests := make([][]byte, c.count)
	for i := range codes {
		var raw [10]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
		}
		var b strings.Builder
		var acc uint64
		for j := 0; j < 16; j++ {
			if j%8 == 0 {
				acc = 0
				for _, x := range raw[j/8*5 : j/8*5+5] {
					acc = acc<<8 | uint64(x)
				}
			}
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(crockford[(acc>>(35-5*(j%8)))&31])
		}
		codes[i] = b.String()
		digests[i] = recoveryDigest(subject, strings.ReplaceAll(codes[i], "-", ""))
	}
	if err := c.codes.Replace(ctx, subject, digests); err != nil {
		return nil, fmt.Errorf("moat/stepup: storing recovery codes: %w", err)
	}
	return codes, nil
}

// Remaining returns how many unused codes subject has.
func (c *RecoveryCheck) Remaining(ctx context.Context, subject string) (int, error) {
	return c.codes.Count(ctx, subject)
}

func recoveryDigest(subject, normalized string) []byte {
	sum := sha256.Sum256([]byte("moat/stepup recovery v1\x00" + subject + "\x00" + normalized))
	return sum[:]
}

// normalizeRecoveryCode returns the 16 canonical characters of a code as
// typed, or false.
func normalizeRecoveryCode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		switch ch {
		case '-', ' ':
			continue
		case 'O':
			ch = '0'
		case 'I', 'L':
			ch = '1'
		}
		if strings.IndexByte(crockford, ch) < 0 || b.Len() == 16 {
			return "", false
		}
		b.WriteByte(ch)
	}
	return b.String(), b.Len() == 16
}

// RecoveryChallenge is the recovery check's challenge.
type RecoveryChallenge struct {
	Format       string `json:"format"`
	Reason       string `json:"reason,omitempty"`
	AttemptsLeft *int   `json:"attempts_left,omitempty"`
}

func recoveryChallenge(reason string, left int) any {
	ch := RecoveryChallenge{Format: "XXXX-XXXX-XXXX-XXXX", Reason: reason}
	if reason != "" && reason != ReasonMalformed {
		ch.AttemptsLeft = &left
	}
	return ch
}

// Authorize implements auth.Check.
func (c *RecoveryCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if req.Subject == "" {
		return refused(ReasonSubjectRequired), nil
	}
	n, err := c.codes.Count(ctx, req.Subject)
	if err != nil {
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: counting recovery codes: %w", err)
	}
	if n == 0 {
		return refused(ReasonNotEnrolled), nil
	}
	if !hasAnswer(req.Answer) {
		return challenge(recoveryChallenge("", 0), ""), nil
	}
	var a OTPAnswer
	code, ok := "", false
	if err := decodeAnswer(req.Answer, &a); err == nil {
		code, ok = normalizeRecoveryCode(a.Code)
	}
	if !ok {
		return challenge(recoveryChallenge(ReasonMalformed, 0), ReasonMalformed), nil
	}
	out, err := c.lock.Try(ctx, "user:"+req.Subject, req.Now, func(ctx context.Context) (bool, error) {
		err := c.codes.Use(ctx, req.Subject, recoveryDigest(req.Subject, code))
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("moat/stepup: using recovery code: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	return c.outcome(out, req.Subject, ReasonWrongCode, recoveryChallenge), nil
}

// MemoryRecoveryStore is the in-memory [RecoveryStore]. It is safe for
// concurrent use.
type MemoryRecoveryStore struct {
	mu sync.Mutex
	m  map[string][][]byte
}

var _ RecoveryStore = (*MemoryRecoveryStore)(nil)

// NewMemoryRecoveryStore returns an empty store.
func NewMemoryRecoveryStore() *MemoryRecoveryStore {
	return &MemoryRecoveryStore{m: map[string][][]byte{}}
}

// Replace implements [RecoveryStore].
func (s *MemoryRecoveryStore) Replace(ctx context.Context, subject string, digests [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	set := make([][]byte, 0, len(digests))
	for _, d := range digests {
		set = append(set, bytes.Clone(d))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(set) == 0 {
		delete(s.m, subject)
	} else {
		s.m[subject] = set
	}
	return nil
}

// Use implements [RecoveryStore].
func (s *MemoryRecoveryStore) Use(ctx context.Context, subject string, digest []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.m[subject]
	for i, d := range set {
		if bytes.Equal(d, digest) {
			s.m[subject] = append(set[:i:i], set[i+1:]...)
			return nil
		}
	}
	return ErrNotFound
}

// Count implements [RecoveryStore].
func (s *MemoryRecoveryStore) Count(ctx context.Context, subject string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m[subject]), nil
}
