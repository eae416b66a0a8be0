package stepup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moatsec/moat/auth"
	"github.com/moatsec/moat/kv"
)

// User is an account as the password check sees it.
type User struct {
	// Subject is the user's stable identifier: the sub of its tokens.
	Subject string
	// PasswordHash is the user's Argon2id hash (see [PasswordHasher]).
	PasswordHash string
	// Disabled refuses the user even with the right password.
	Disabled bool
}

// UserDirectory looks up accounts by username. The application's user
// database implements it; [MemoryDirectory] is an in-memory one for tests
// and examples.
type UserDirectory interface {
	// LookupUser returns the account named username, ErrUnknownUser when
	// there is none, or another error when it could not tell (the check
	// then fails with that error: 503).
	LookupUser(ctx context.Context, username string) (User, error)
}

// PasswordConfig configures [NewPasswordCheck].
type PasswordConfig struct {
	// Name is the check's name in the protocol (MobileFirst's "UserLogin").
	// Required.
	Name string
	// Users finds accounts by username. Required.
	Users UserDirectory
	// Hasher verifies password hashes. Required.
	Hasher *PasswordHasher
	// Store keeps the attempt state. Required.
	Store kv.Store
	// Lockout sets the attempt budget; its zero value gives the lockout
	// defaults, with the budget named after the check. Failures count per
	// account (per username for unknown users, so that an unknown user
	// blocks like a known one; an unknown username's lock lifts 30 days
	// after its first failure, a known user's only with a success or
	// Unblock).
	Lockout LockoutConfig
	// ValidFor is how long a success holds. Zero means DefaultValidFor.
	ValidFor time.Duration
	// AMR is what a success contributes. Nil means ["pwd"].
	AMR []string
	// Rehash, when set, is called after a successful login whose hash used
	// other parameters than the hasher's, with a fresh hash to store; the
	// login succeeds whatever it does. Nil means hashes are never upgraded.
	Rehash func(ctx context.Context, subject, newHash string)
}

// PasswordCheck is a username and password check. It identifies the user:
// its success carries the account's Subject.
//
// Challenge: {"fields":["username","password"]}, plus "reason" and
// "attempts_left" after a failure.
// Answer: {"username":"alice","password":"..."}.
type PasswordCheck struct {
	base
	users  UserDirectory
	hasher *PasswordHasher
	rehash func(context.Context, string, string)
}

var _ auth.Check = (*PasswordCheck)(nil)

// Longest accepted username and password, in bytes.
const (
	MaxUsernameLen = 256
	MaxPasswordLen = 1024
)

// NewPasswordCheck returns a password check.
func NewPasswordCheck(cfg PasswordConfig) (*PasswordCheck, error) {
	if cfg.Users == nil || cfg.Hasher == nil {
		return nil, fmt.Errorf("%w: password check needs Users and Hasher", ErrInvalidConfig)
	}
	b, err := newBase(cfg.Name, cfg.Store, cfg.Lockout, cfg.ValidFor, cfg.AMR, []string{AMRPassword})
	if err != nil {
		return nil, err
	}
	return &PasswordCheck{base: b, users: cfg.Users, hasher: cfg.Hasher, rehash: cfg.Rehash}, nil
}

// PasswordChallenge is the password check's challenge.
type PasswordChallenge struct {
	Fields       []string `json:"fields"`
	Reason       string   `json:"reason,omitempty"`
	AttemptsLeft *int     `json:"attempts_left,omitempty"`
}

// PasswordAnswer is the answer the password check expects.
type PasswordAnswer struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func passwordChallenge(reason string, left int) any {
	c := PasswordChallenge{Fields: []string{"username", "password"}, Reason: reason}
	if reason != "" {
		c.AttemptsLeft = &left
	}
	return c
}

// Authorize implements auth.Check.
func (c *PasswordCheck) Authorize(ctx context.Context, req *auth.CheckRequest) (auth.CheckResult, error) {
	if !hasAnswer(req.Answer) {
		return challenge(passwordChallenge("", 0), ""), nil
	}
	var a PasswordAnswer
	if err := decodeAnswer(req.Answer, &a); err != nil || a.Username == "" || a.Password == "" ||
		len(a.Username) > MaxUsernameLen || len(a.Password) > MaxPasswordLen {
		return challenge(PasswordChallenge{Fields: []string{"username", "password"}, Reason: ReasonMalformed}, ReasonMalformed), nil
	}
	user, err := c.users.LookupUser(ctx, a.Username)
	known := err == nil
	switch {
	case errors.Is(err, ErrUnknownUser):
	case err != nil:
		return auth.CheckResult{}, fmt.Errorf("moat/stepup: looking up user: %w", err)
	case user.Subject == "":
		return auth.CheckResult{}, errors.New("moat/stepup: user directory returned a user without a subject")
	}
	account, memory := "user:"+user.Subject, untilReset
	if !known {
		account, memory = "unknown:"+strings.ToLower(a.Username), unknownAccountMemory
	}
	var rehash bool
	out, err := c.lock.try(ctx, account, req.Now, memory, func(ctx context.Context) (bool, error) {
		if !known {
			return false, c.hasher.VerifyUnknown(ctx, a.Password)
		}
		ok, rh, err := c.hasher.Verify(ctx, user.PasswordHash, a.Password)
		rehash = rh
		return ok, err
	})
	if err != nil {
		return auth.CheckResult{}, err
	}
	if out.OK {
		if user.Disabled {
			return refused(ReasonAccountDisabled), nil
		}
		if rehash && c.rehash != nil {
			if h, err := c.hasher.Hash(ctx, a.Password); err == nil {
				c.rehash(ctx, user.Subject, h)
			}
		}
	}
	return c.outcome(out, user.Subject, ReasonWrongCredentials, passwordChallenge), nil
}

// MemoryDirectory is an in-memory [UserDirectory] for tests, examples and
// small deployments. It is safe for concurrent use.
type MemoryDirectory struct {
	hasher *PasswordHasher
	mu     sync.RWMutex
	users  map[string]User
}

var _ UserDirectory = (*MemoryDirectory)(nil)

// NewMemoryDirectory returns an empty directory hashing with hasher.
func NewMemoryDirectory(hasher *PasswordHasher) *MemoryDirectory {
	return &MemoryDirectory{hasher: hasher, users: map[string]User{}}
}

// AddUser creates or replaces the account username with the given
// subject and password.
func (d *MemoryDirectory) AddUser(ctx context.Context, username, subject, password string) error {
	if username == "" || subject == "" || password == "" {
		return errors.New("moat/stepup: username, subject and password are required")
	}
	h, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[username] = User{Subject: subject, PasswordHash: h}
	return nil
}

// SetDisabled disables or enables the account username.
func (d *MemoryDirectory) SetDisabled(username string, disabled bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[username]
	if !ok {
		return ErrUnknownUser
	}
	u.Disabled = disabled
	d.users[username] = u
	return nil
}

// LookupUser implements [UserDirectory].
func (d *MemoryDirectory) LookupUser(ctx context.Context, username string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.users[username]
	if !ok {
		return User{}, ErrUnknownUser
	}
	return u, nil
}
