package stepup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/moatsec/moat/kv"
)

// Lockout defaults. NIST SP 800-63B §5.2.2 requires that a verifier never
// allow more than 100 consecutive failed attempts on one account; moat's
// defaults stay well below that and [NewLockout] refuses more.
const (
	// DefaultMaxFailures is how many failures within DefaultFailureWindow
	// block an account for DefaultBlockFor.
	DefaultMaxFailures = 5
	// DefaultFailureWindow is how long a failure counts toward MaxFailures,
	// measured from the first failure of a run.
	DefaultFailureWindow = time.Hour
	// DefaultBlockFor is how long a temporary block lasts.
	DefaultBlockFor = 15 * time.Minute
	// DefaultMaxConsecutiveFailures is how many failures without a success
	// in between lock an account until [Lockout.Reset].
	DefaultMaxConsecutiveFailures = 50
	// MaxConsecutiveFailuresLimit is the most consecutive failures any
	// configuration may allow (NIST SP 800-63B §5.2.2).
	MaxConsecutiveFailuresLimit = 100
)

// untilReset is the kv TTL of the consecutive-failure counter and of the
// lock it triggers: kv entries must expire, so "until a success or
// Reset" is a century. A counter that expired on its own would give an
// attacker who waits a fresh budget, and so more than
// MaxConsecutiveFailures failures without a success in between.
const untilReset = 100 * 365 * 24 * time.Hour

// LockoutConfig configures a [Lockout]. The zero value of every field but
// Name gives moat's defaults.
type LockoutConfig struct {
	// Name names the attempt budget in the store. Checks with the same
	// Name share one budget per account. Required.
	Name string
	// MaxFailures is how many failures within FailureWindow block the
	// account for BlockFor. Zero means DefaultMaxFailures (5). It may not
	// exceed MaxConsecutiveFailures.
	MaxFailures int
	// FailureWindow is how long a failure counts toward MaxFailures, from
	// the first failure of a run. Zero means DefaultFailureWindow (1 h).
	FailureWindow time.Duration
	// BlockFor is how long the account stays blocked after MaxFailures.
	// Zero means DefaultBlockFor (15 min).
	BlockFor time.Duration
	// MaxConsecutiveFailures is how many failures with no success between
	// them lock the account until Reset. They are remembered until a
	// success or Reset, however long the attacker waits between them, so
	// no more than this many failures are ever verified without a success
	// in between. Zero means DefaultMaxConsecutiveFailures (50); more than
	// MaxConsecutiveFailuresLimit (100) is refused.
	MaxConsecutiveFailures int
}

// Lockout is the attempt state machine every check in this package runs
// its verifications under. State lives in a [kv.Store], per account (a
// user, never a challenge, client or IP address), so failures spread over
// parallel challenges, sessions, clients and server instances share one
// budget:
//
//   - attempts: each verification first reserves an attempt with an atomic
//     kv Increment, so concurrent guesses can never exceed the budget (the
//     ones beyond it are refused unverified, block the account, and do
//     not count as failures);
//   - blocked: after MaxFailures failures the account is blocked for
//     BlockFor, and every answer, right or wrong, is refused until then;
//   - locked: after MaxConsecutiveFailures failures without a success the
//     account is blocked until [Lockout.Reset] (an operator, a recovery
//     flow); the consecutive failures are remembered until a success or
//     Reset, never forgotten with time, so an attacker who paces guesses
//     around the blocks, or waits months between them, never gets more
//     than MaxConsecutiveFailures (at most 100, NIST SP 800-63B §5.2.2);
//   - a success forgets the failures (it does not lift a running block).
//
// A store error is returned as an error, never taken as a success.
type Lockout struct {
	store  kv.Store
	cfg    LockoutConfig
	prefix string
}

// unknownAccountMemory is how long [PasswordCheck] remembers the
// consecutive failures of a username its directory does not know. No
// subscriber account is at risk there, and remembering every guessed
// name until a success that cannot come would let anyone grow the store
// without bound; a known user's failures are remembered until a success.
const unknownAccountMemory = 30 * 24 * time.Hour

// NewLockout returns a lockout keeping its state in store.
func NewLockout(store kv.Store, cfg LockoutConfig) (*Lockout, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: lockout needs a kv.Store", ErrInvalidConfig)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: lockout needs a Name", ErrInvalidConfig)
	}
	if cfg.MaxFailures < 0 || cfg.MaxConsecutiveFailures < 0 || cfg.FailureWindow < 0 || cfg.BlockFor < 0 {
		return nil, fmt.Errorf("%w: lockout limits must not be negative", ErrInvalidConfig)
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.FailureWindow == 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	if cfg.BlockFor == 0 {
		cfg.BlockFor = DefaultBlockFor
	}
	if cfg.MaxConsecutiveFailures == 0 {
		cfg.MaxConsecutiveFailures = max(DefaultMaxConsecutiveFailures, cfg.MaxFailures)
	}
	if cfg.MaxConsecutiveFailures > MaxConsecutiveFailuresLimit {
		return nil, fmt.Errorf("%w: MaxConsecutiveFailures %d exceeds %d (NIST SP 800-63B)",
			ErrInvalidConfig, cfg.MaxConsecutiveFailures, MaxConsecutiveFailuresLimit)
	}
	if cfg.MaxFailures > cfg.MaxConsecutiveFailures {
		return nil, fmt.Errorf("%w: MaxFailures exceeds MaxConsecutiveFailures", ErrInvalidConfig)
	}
	return &Lockout{store: store, cfg: cfg, prefix: "stepup:lock:" + cfg.Name + ":"}, nil
}

// Config returns the lockout's configuration with defaults filled in.
func (l *Lockout) Config() LockoutConfig { return l.cfg }

// Outcome is what one attempt under a [Lockout] came to.
type Outcome struct {
	// OK reports a successful verification.
	OK bool
	// Blocked reports an account that refuses every answer until
	// BlockedUntil; the answer was not verified, or was wrong and used up
	// the budget.
	Blocked      bool
	BlockedUntil time.Time
	// Busy reports an attempt refused because concurrent attempts already
	// reserved the whole budget; the answer was not verified.
	Busy bool
	// AttemptsLeft is how many failures the account may still make before
	// it is blocked (after a failure, and from [Lockout.State]).
	AttemptsLeft int
}

// keys are an account's failure-count prefix, consecutive-failure count,
// block record and budget epoch. The failure count of a budget lives at
// the prefix plus the budget's epoch (see [Lockout.failKey]): a block or
// lock starts a fresh budget by moving the epoch on, never by deleting a
// count that attempts in flight are still incrementing.
func (l *Lockout) keys(account string) (fail, consec, block, epoch string) {
	sum := sha256.Sum256([]byte(account))
	h := base64.RawURLEncoding.EncodeToString(sum[:18])
	return l.prefix + "f:" + h, l.prefix + "c:" + h, l.prefix + "b:" + h, l.prefix + "e:" + h
}

// Try runs verify under account's attempt budget. verify reports whether
// the answer is right; it runs only when the account is not blocked and an
// attempt could be reserved. An error from verify or from the store is
// returned as is, with the reservation given back.
func (l *Lockout) Try(ctx context.Context, account string, now time.Time, verify func(context.Context) (bool, error)) (Outcome, error) {
	return l.try(ctx, account, now, untilReset, verify)
}

// try is Try with the consecutive-failure counter remembered for memory
// (untilReset, except for unknown usernames).
func (l *Lockout) try(ctx context.Context, account string, now time.Time, memory time.Duration, verify func(context.Context) (bool, error)) (Outcome, error) {
	if account == "" {
		return Outcome{}, errors.New("moat/stepup: lockout needs an account")
	}
	fp, ck, bk, ek := l.keys(account)
	// The budget is chosen before the block is read: a block moves the
	// epoch on only after writing the block record, so an attempt that
	// reads no block counts in a budget the block did not yet close, and
	// one that counts in a closed budget finds it full.
	fk, err := l.failKey(ctx, fp, ek)
	if err != nil {
		return Outcome{}, err
	}
	if until, blocked, err := l.blocked(ctx, bk, now); err != nil || blocked {
		return Outcome{Blocked: blocked, BlockedUntil: until}, err
	}
	f, err := l.store.Increment(ctx, fk, 1, l.cfg.FailureWindow)
	if err != nil {
		return Outcome{}, fmt.Errorf("moat/stepup: counting attempt: %w", err)
	}
	if f > int64(l.cfg.MaxFailures) {
		// Concurrent attempts already hold the whole budget: a burst of
		// parallel guesses. Block, without counting this unverified
		// attempt toward the consecutive limit (or one burst would lock
		// the account until Reset). The attempts that reserved the budget
		// are still verified: of a burst of right answers, one passes.
		out, err := l.block(ctx, bk, ek, now)
		out.Busy = true
		return out, err
	}
	c, err := l.store.Increment(ctx, ck, 1, memory)
	if err != nil {
		l.giveBack(ctx, fk, l.cfg.FailureWindow)
		return Outcome{}, fmt.Errorf("moat/stepup: counting attempt: %w", err)
	}
	if c > int64(l.cfg.MaxConsecutiveFailures) {
		return l.lock(ctx, ck, bk, ek, now, memory)
	}
	ok, err := verify(ctx)
	if err != nil {
		l.giveBack(ctx, ck, memory)
		l.giveBack(ctx, fk, l.cfg.FailureWindow)
		return Outcome{}, err
	}
	if ok {
		// A success forgets the failures. It does not lift a block that a
		// concurrent burst started meanwhile: blocks end on their own.
		for _, k := range []string{fk, ck} {
			if err := l.store.Delete(ctx, k); err != nil {
				return Outcome{}, fmt.Errorf("moat/stepup: resetting attempts: %w", err)
			}
		}
		return Outcome{OK: true}, nil
	}
	switch {
	case c >= int64(l.cfg.MaxConsecutiveFailures):
		return l.lock(ctx, ck, bk, ek, now, memory)
	case f >= int64(l.cfg.MaxFailures):
		return l.block(ctx, bk, ek, now)
	}
	return Outcome{AttemptsLeft: min(l.cfg.MaxFailures-int(f), l.cfg.MaxConsecutiveFailures-int(c))}, nil
}

// giveBack returns a reserved attempt that was not verified (verify could
// not decide, or a concurrent block came first), so that a store or
// sender outage does not lock users out. Best effort; ttl is the
// counter's own, in case it was deleted meanwhile.
func (l *Lockout) giveBack(ctx context.Context, key string, ttl time.Duration) {
	_, _ = l.store.Increment(context.WithoutCancel(ctx), key, -1, ttl)
}

// blocked reads the block record. A record that exists blocks, whatever
// the clocks say: it expires in the store when the block ends.
func (l *Lockout) blocked(ctx context.Context, bk string, now time.Time) (time.Time, bool, error) {
	it, err := l.store.Get(ctx, bk)
	if errors.Is(err, kv.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("moat/stepup: reading block state: %w", err)
	}
	until := it.ExpiresAt
	if n, err := strconv.ParseInt(string(it.Value), 10, 64); err == nil {
		until = time.Unix(0, n).In(now.Location())
	}
	if until.Before(now) {
		until = now
	}
	return until, true, nil
}

// block starts a temporary block (unless one is already running) and
// starts a fresh failure budget for after it.
func (l *Lockout) block(ctx context.Context, bk, ek string, now time.Time) (Outcome, error) {
	until := now.Add(l.cfg.BlockFor)
	_, err := l.store.CompareAndSet(ctx, bk, strconv.AppendInt(nil, until.UnixNano(), 10), l.cfg.BlockFor, 0)
	switch {
	case errors.Is(err, kv.ErrConflict):
		if u, ok, err := l.blocked(ctx, bk, now); err != nil {
			return Outcome{}, err
		} else if ok {
			until = u
		}
	case err != nil:
		return Outcome{}, fmt.Errorf("moat/stepup: writing block state: %w", err)
	}
	if err := l.newBudget(ctx, ek); err != nil {
		return Outcome{}, err
	}
	return Outcome{Blocked: true, BlockedUntil: until}, nil
}

// lock blocks the account until the consecutive-failure counter expires:
// until Reset, for every account but an unknown username.
func (l *Lockout) lock(ctx context.Context, ck, bk, ek string, now time.Time, memory time.Duration) (Outcome, error) {
	it, err := l.store.Get(ctx, ck)
	until := now.Add(memory)
	switch {
	case err == nil:
		until = it.ExpiresAt
	case !errors.Is(err, kv.ErrNotFound):
		return Outcome{}, fmt.Errorf("moat/stepup: reading lockout state: %w", err)
	}
	ttl := until.Sub(now)
	if ttl <= 0 {
		ttl = time.Second
	}
	if _, err := l.store.Set(ctx, bk, strconv.AppendInt(nil, until.UnixNano(), 10), ttl); err != nil {
		return Outcome{}, fmt.Errorf("moat/stepup: writing block state: %w", err)
	}
	if err := l.newBudget(ctx, ek); err != nil {
		return Outcome{}, err
	}
	return Outcome{Blocked: true, BlockedUntil: until}, nil
}

// failKey returns the failure count of account's budget epoch, from the
// prefix fp that [Lockout.keys] gives.
func (l *Lockout) failKey(ctx context.Context, fp, ek string) (string, error) {
	epoch, err := l.counter(ctx, ek)
	if err != nil {
		return "", err
	}
	return fp + ":" + strconv.FormatInt(epoch, 10), nil
}

// newBudget starts a fresh failure budget for the attempts that come
// after a block: it moves the epoch on. Attempts that read the old epoch
// keep counting in the old budget, which is full. The epoch lives as long
// as the consecutive count, so it never goes back to a budget still
// counted.
func (l *Lockout) newBudget(ctx context.Context, ek string) error {
	if _, err := l.store.Increment(ctx, ek, 1, untilReset); err != nil {
		return fmt.Errorf("moat/stepup: starting a failure budget: %w", err)
	}
	return nil
}

// State reports whether account is blocked and how many attempts it has
// left, without using one.
func (l *Lockout) State(ctx context.Context, account string, now time.Time) (Outcome, error) {
	fp, ck, bk, ek := l.keys(account)
	if until, blocked, err := l.blocked(ctx, bk, now); err != nil || blocked {
		return Outcome{Blocked: blocked, BlockedUntil: until}, err
	}
	fk, err := l.failKey(ctx, fp, ek)
	if err != nil {
		return Outcome{}, err
	}
	f, err := l.counter(ctx, fk)
	if err != nil {
		return Outcome{}, err
	}
	c, err := l.counter(ctx, ck)
	if err != nil {
		return Outcome{}, err
	}
	left := min(l.cfg.MaxFailures-int(f), l.cfg.MaxConsecutiveFailures-int(c))
	return Outcome{AttemptsLeft: max(left, 0)}, nil
}

func (l *Lockout) counter(ctx context.Context, key string) (int64, error) {
	it, err := l.store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("moat/stepup: reading attempt count: %w", err)
	}
	n, err := strconv.ParseInt(string(it.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("moat/stepup: attempt count is not a number")
	}
	return n, nil
}

// Reset forgets account's failures and lifts any block: after a success,
// or when an operator or a recovery flow unlocks the account.
func (l *Lockout) Reset(ctx context.Context, account string) error {
	_, ck, bk, ek := l.keys(account)
	if err := l.newBudget(ctx, ek); err != nil {
		return err
	}
	for _, k := range []string{ck, bk} {
		if err := l.store.Delete(ctx, k); err != nil {
			return fmt.Errorf("moat/stepup: resetting attempts: %w", err)
		}
	}
	return nil
}
