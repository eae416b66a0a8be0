package stepup

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/moatsec/moat/auth"
)

// AnyAge, as Policy.MaxAge, accepts an authentication of any age.
const AnyAge time.Duration = -1

// Policy is a route's step-up requirement (RFC 9470): how strongly and how
// recently the user must have authenticated. A request whose token falls
// short is answered 401 with
//
//	WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="...", max_age="..."
//
// and the client goes back to the Authorization Challenge Endpoint with
// those acr_values and max_age.
type Policy struct {
	// ACRValues lists, in order of preference, the acr values that satisfy
	// the policy; they are the challenge's acr_values. Required.
	ACRValues []string
	// AMR lists authentication methods (RFC 8176) that must all have been
	// used. When set, the token's amr decides (and its acr need not be in
	// ACRValues); when empty, the token's acr must be one of ACRValues.
	AMR []string
	// MaxAge is how long ago the user may have authenticated: with AMR,
	// each listed method's own time counts (Principal.AMRTimes, or
	// AuthTime when absent); without, AuthTime. Required: a positive
	// duration of at least one second, or AnyAge.
	MaxAge time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Validate reports whether p is complete.
func (p Policy) Validate() error {
	switch {
	case len(p.ACRValues) == 0:
		return fmt.Errorf("%w: ACRValues is required (it is what the challenge asks for)", ErrInvalidPolicy)
	case slices.Contains(p.ACRValues, "") || slices.Contains(p.AMR, ""):
		return fmt.Errorf("%w: empty acr or amr value", ErrInvalidPolicy)
	case p.MaxAge == 0:
		return fmt.Errorf("%w: MaxAge is required (a duration, or AnyAge)", ErrInvalidPolicy)
	case p.MaxAge != AnyAge && p.MaxAge < time.Second:
		return fmt.Errorf("%w: MaxAge must be at least one second, or AnyAge", ErrInvalidPolicy)
	}
	return nil
}

// Evaluate returns nil when pr satisfies the policy at now, or the RFC
// 9470 error to answer. A nil principal (no token middleware in front)
// gets a plain 401.
func (p Policy) Evaluate(pr *auth.Principal, now time.Time) *auth.ResourceError {
	if pr == nil {
		return &auth.ResourceError{Status: http.StatusUnauthorized}
	}
	fail := func(desc string) *auth.ResourceError {
		e := &auth.ResourceError{Status: http.StatusUnauthorized, Code: auth.CodeInsufficientUserAuthentication,
			Description: desc, ACRValues: slices.Clone(p.ACRValues)}
		if p.MaxAge != AnyAge {
			e.MaxAge = int((p.MaxAge + time.Second - 1) / time.Second)
		}
		return e
	}
	fresh := func(t time.Time) bool {
		return p.MaxAge == AnyAge || (!t.IsZero() && !now.After(t.Add(p.MaxAge)))
	}
	if len(p.AMR) == 0 {
		if !slices.Contains(p.ACRValues, pr.ACR) {
			return fail("a different authentication level is required")
		}
		if !fresh(pr.AuthTime) {
			return fail("more recent authentication is required")
		}
		return nil
	}
	for _, m := range p.AMR {
		if !pr.HasAMR(m) {
			return fail("a different authentication level is required")
		}
	}
	for _, m := range p.AMR {
		t, ok := pr.AMRTimes[m]
		if !ok {
			t = pr.AuthTime
		}
		if !fresh(t) {
			return fail("more recent authentication is required")
		}
	}
	return nil
}

// Check is the policy outside HTTP middleware: nil when the principal in
// r's context satisfies it, else the *auth.ResourceError to answer.
func (p Policy) Check(r *http.Request) error {
	pr, _ := auth.PrincipalFrom(r.Context())
	if e := p.Evaluate(pr, p.now()); e != nil {
		return e
	}
	return nil
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Require returns middleware that lets through only requests whose
// principal (put in the context by auth's resource middleware, which must
// run first) satisfies p, and answers the others with an RFC 9470
// challenge.
func Require(p Policy) (func(http.Handler) http.Handler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.ACRValues = slices.Clone(p.ACRValues)
	p.AMR = slices.Clone(p.AMR)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pr, _ := auth.PrincipalFrom(r.Context())
			if e := p.Evaluate(pr, p.now()); e != nil {
				auth.WriteResourceError(w, r, e)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// MustRequire is Require for policies written in the program: it panics
// on an invalid policy.
func MustRequire(p Policy) func(http.Handler) http.Handler {
	m, err := Require(p)
	if err != nil {
		panic(err)
	}
	return m
}
