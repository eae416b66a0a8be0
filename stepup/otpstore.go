package stepup

import (
	"context"
	"slices"
	"sync"
	"time"
)

// OTPKind tells TOTP and HOTP enrollments apart; a user may have one of
// each.
type OTPKind string

// The OTP enrollment kinds.
const (
	KindTOTP OTPKind = "totp"
	KindHOTP OTPKind = "hotp"
)

// OTPEnrollment is a user's confirmed TOTP or HOTP credential: a durable
// record.
type OTPEnrollment struct {
	Subject string
	Kind    OTPKind
	// ID identifies this enrollment; a new enrollment of the same kind for
	// the same user gets a new ID, so that a verification begun against
	// the old seed cannot advance the new record.
	ID string
	// SealedSecret is the seed sealed by a [Sealer], bound to Kind,
	// Subject and ID.
	SealedSecret []byte
	Algorithm    Algorithm
	Digits       int
	// Period is the TOTP step in seconds (0 for HOTP).
	Period int
	// Counter is, for TOTP, the last accepted time step; for HOTP, the
	// next counter expected. It only ever grows.
	Counter   int64
	CreatedAt time.Time
}

// OTPStore keeps OTP enrollments: a durable store (PostgreSQL in
// production, [MemoryOTPStore] for tests). The conformance suite in
// package stepuptest checks every implementation.
type OTPStore interface {
	// Get returns subject's enrollment of kind, or ErrNotFound.
	Get(ctx context.Context, subject string, kind OTPKind) (OTPEnrollment, error)
	// Put creates subject's enrollment of e.Kind, or replaces it whole.
	Put(ctx context.Context, e OTPEnrollment) error
	// Advance sets the Counter of subject's enrollment of kind to counter
	// if that enrollment still has the given id and counter is greater than
	// its Counter, in one atomic step: of concurrent callers passing the
	// same counter, exactly one succeeds. It returns ErrReplay when counter
	// is not greater, ErrNotFound when there is no such enrollment (or it
	// has another ID).
	Advance(ctx context.Context, subject string, kind OTPKind, id string, counter int64) error
	// Delete removes subject's enrollment of kind. Deleting a missing one
	// is not an error.
	Delete(ctx context.Context, subject string, kind OTPKind) error
}

// MemoryOTPStore is the in-memory [OTPStore]. It is safe for concurrent use;
// its records live as long as the process.
type MemoryOTPStore struct {
	mu sync.Mutex
	m  map[otpKey]OTPEnrollment
}

type otpKey struct {
	subject string
	kind    OTPKind
}

var _ OTPStore = (*MemoryOTPStore)(nil)

// NewMemoryOTPStore returns an empty store.
func NewMemoryOTPStore() *MemoryOTPStore {
	return &MemoryOTPStore{m: map[otpKey]OTPEnrollment{}}
}

func cloneEnrollment(e OTPEnrollment) OTPEnrollment {
	e.SealedSecret = slices.Clone(e.SealedSecret)
	return e
}

// Get implements [OTPStore].
func (s *MemoryOTPStore) Get(ctx context.Context, subject string, kind OTPKind) (OTPEnrollment, error) {
	if err := ctx.Err(); err != nil {
		return OTPEnrollment{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[otpKey{subject, kind}]
	if !ok {
		return OTPEnrollment{}, ErrNotFound
	}
	return cloneEnrollment(e), nil
}

// Put implements [OTPStore].
func (s *MemoryOTPStore) Put(ctx context.Context, e OTPEnrollment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[otpKey{e.Subject, e.Kind}] = cloneEnrollment(e)
	return nil
}

// Advance implements [OTPStore].
func (s *MemoryOTPStore) Advance(ctx context.Context, subject string, kind OTPKind, id string, counter int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := otpKey{subject, kind}
	e, ok := s.m[k]
	if !ok || e.ID != id {
		return ErrNotFound
	}
	if counter <= e.Counter {
		return ErrReplay
	}
	e.Counter = counter
	s.m[k] = e
	return nil
}

// Delete implements [OTPStore].
func (s *MemoryOTPStore) Delete(ctx context.Context, subject string, kind OTPKind) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, otpKey{subject, kind})
	return nil
}
