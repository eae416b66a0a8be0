package stepup

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2idParams are the cost parameters of an Argon2id password hash
// (RFC 9106). They are stored with every hash, so they can be raised later
// without invalidating existing hashes.
type Argon2idParams struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLen and KeyLen are the salt and derived key lengths in bytes.
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2idParams are OWASP's recommended Argon2id parameters
// (19 MiB, 2 passes, 1 thread), with a 16-byte salt and a 32-byte hash.
// One derivation takes about 20 ms on a current server core.
var DefaultArgon2idParams = Argon2idParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// weak reports parameters below OWASP's equal-cost table (m=7 MiB at t=5
// up to m=46 MiB at t=1): memory × passes under 35 MiB, or memory under
// 7 MiB, or short salts and keys.
func (p Argon2idParams) weak() bool {
	return p.Memory < 7*1024 || uint64(p.Memory)*uint64(p.Time) < 35*1024 || p.SaltLen < 16 || p.KeyLen < 16
}

func (p Argon2idParams) valid() error {
	switch {
	case p.Time < 1 || p.Time > 16:
		return fmt.Errorf("time %d outside 1..16", p.Time)
	case p.Threads < 1:
		return fmt.Errorf("threads must be at least 1")
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("memory must be at least 8 KiB per thread")
	case p.SaltLen < 8 || p.SaltLen > 64:
		return fmt.Errorf("salt length %d outside 8..64", p.SaltLen)
	case p.KeyLen < 16 || p.KeyLen > 64:
		return fmt.Errorf("key length %d outside 16..64", p.KeyLen)
	}
	return nil
}

// DefaultMaxHashMemory is the most memory (KiB) a stored hash may ask for
// when HasherConfig.MaxMemory is zero: 256 MiB.
const DefaultMaxHashMemory = 256 * 1024

// HasherConfig configures [NewPasswordHasher].
type HasherConfig struct {
	// Params are the parameters of new hashes. The zero value means
	// DefaultArgon2idParams. Parameters weaker than OWASP's recommendations
	// are refused unless InsecureWeakParams is set.
	Params Argon2idParams
	// InsecureWeakParams allows Params below OWASP's recommendations. Only
	// for tests, where hashing must be fast. False (the zero value) refuses
	// them.
	InsecureWeakParams bool
	// MaxConcurrent bounds how many derivations run at once, so parallel
	// logins cannot exhaust memory (each takes Params.Memory). Callers
	// beyond it wait (or give up when their context ends). Zero means
	// runtime.GOMAXPROCS(0).
	MaxConcurrent int
	// MaxMemory is the largest memory cost (KiB) a stored hash may ask for;
	// a hash asking for more is refused with ErrInvalidHash rather than
	// derived. Zero means DefaultMaxHashMemory (256 MiB).
	MaxMemory uint32
}

// PasswordHasher hashes and verifies passwords with Argon2id. Hashes use
// the PHC string format of the reference implementation:
//
//	$argon2id$v=19$m=<memory KiB>,t=<passes>,p=<threads>$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. It is safe for
// concurrent use.
type PasswordHasher struct {
	params Argon2idParams
	maxMem uint32
	sem    chan struct{}
	dummy  string
}

// NewPasswordHasher returns a hasher.
func NewPasswordHasher(cfg HasherConfig) (*PasswordHasher, error) {
	p := cfg.Params
	if p == (Argon2idParams{}) {
		p = DefaultArgon2idParams
	}
	if err := p.valid(); err != nil {
		return nil, fmt.Errorf("%w: argon2id parameters: %v", ErrInvalidConfig, err)
	}
	if p.weak() && !cfg.InsecureWeakParams {
		return nil, fmt.Errorf("%w: argon2id parameters below OWASP's recommendations (set InsecureWeakParams for tests)", ErrInvalidConfig)
	}
	n := cfg.MaxConcurrent
	if n < 0 {
		return nil, fmt.Errorf("%w: MaxConcurrent must not be negative", ErrInvalidConfig)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	maxMem := cfg.MaxMemory
	if maxMem == 0 {
		maxMem = DefaultMaxHashMemory
	}
	if p.Memory > maxMem {
		return nil, fmt.Errorf("%w: Params.Memory exceeds MaxMemory", ErrInvalidConfig)
	}
	h := &PasswordHasher{params: p, maxMem: maxMem, sem: make(chan struct{}, n)}
	// The hash that unknown users are checked against, so that a login
	// for an unknown user costs one derivation like any other.
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	d, err := h.Hash(context.Background(), base64.RawStdEncoding.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

// Params returns the parameters of new hashes.
func (h *PasswordHasher) Params() Argon2idParams { return h.params }

// Hash returns the encoded Argon2id hash of password with a fresh salt.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("moat/stepup: reading randomness: %w", err)
	}
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", err
	}
	return encodeArgon2id(h.params, salt, key), nil
}

// Verify reports whether password matches encoded. rehash is true when
// the hash was made with parameters other than the hasher's: the caller
// should store a fresh Hash. A malformed hash, or one asking for more
// memory than MaxMemory, gives ErrInvalidHash; a context that ends while
// waiting for a derivation slot gives its error.
func (h *PasswordHasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	p, salt, want, err := ParseArgon2idHash(encoded)
	if err != nil {
		return false, false, err
	}
	if p.Memory > h.maxMem {
		return false, false, fmt.Errorf("%w: memory cost above the hasher's limit", ErrInvalidHash)
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyUnknown spends the time of one Verify and returns false: what a
// login for an unknown user does, so that it cannot be told apart by its
// duration.
func (h *PasswordHasher) VerifyUnknown(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, h.dummy, password)
	return err
}

func (h *PasswordHasher) derive(ctx context.Context, password string, salt []byte, p Argon2idParams) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("moat/stepup: waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

func encodeArgon2id(p Argon2idParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// ParseArgon2idHash parses an encoded Argon2id hash (see [PasswordHasher])
// into its parameters, salt and derived key. It refuses anything else with
// ErrInvalidHash: other Argon2 variants and versions, missing or repeated
// parameters, non-canonical numbers, padded base64, and parameters outside
// sane bounds.
func ParseArgon2idHash(encoded string) (p Argon2idParams, salt, key []byte, err error) {
	bad := func(why string) (Argon2idParams, []byte, []byte, error) {
		return Argon2idParams{}, nil, nil, fmt.Errorf("%w: %s", ErrInvalidHash, why)
	}
	if len(encoded) > 512 {
		return bad("too long")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return bad("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("parameters must be m, t, p")
	}
	var m, t, th uint64
	for i, want := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		if !ok || k != want || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameters must be m, t, p")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter out of range")
		}
		switch want {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			th = n
		}
	}
	if th > 255 {
		return bad("too many threads")
	}
	salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return bad("hash is not unpadded base64")
	}
	p = Argon2idParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.valid(); err != nil {
		return bad(err.Error())
	}
	return p, salt, key, nil
}
