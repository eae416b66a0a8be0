package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/auth"
)

func init() {
	register(command{name: "token", summary: "inspect and verify access tokens", run: runToken})
}

func runToken(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "token", []subcommand{
		{name: "inspect", summary: "verify an access token and print its claims", run: runTokenInspect},
	}, args)
}

// maxJWKSSize bounds a JWKS document read from a file or URL.
const maxJWKSSize = 1 << 20

func runTokenInspect(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "token inspect", "moat token inspect --jwks FILE_OR_URL --iss ISSUER --aud AUDIENCE [--alg ES256,EdDSA] [--at RFC3339] TOKEN|-")
	jwksFlag := fs.String("jwks", "", "JWK Set of the issuer: a file path or an https URL (http only on loopback) (required)")
	iss := fs.String("iss", "", "expected issuer (required)")
	aud := fs.String("aud", "", "expected audience (required)")
	algs := fs.String("alg", "ES256,EdDSA", "allowed signature algorithms, comma-separated")
	at := fs.String("at", "", "verify at this time (RFC 3339) instead of now")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *jwksFlag == "" || *iss == "" || *aud == "" {
		return usageErrorf(std, "token inspect: --jwks, --iss and --aud are required")
	}
	if fs.NArg() != 1 {
		return usageErrorf(std, "token inspect: give exactly one TOKEN (or - to read it from standard input)")
	}
	at0, code := parseAt(std, *at)
	if code != exitOK {
		return code
	}
	now := time.Now
	if *at != "" {
		now = func() time.Time { return at0 }
	}
	token := fs.Arg(0)
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(std.in, 1<<20))
		if err != nil {
			return usageErrorf(std, "token inspect: reading standard input: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	raw, err := readJWKS(ctx, *jwksFlag)
	if err != nil {
		return usageErrorf(std, "token inspect: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return usageErrorf(std, "token inspect: the JWKS is not a JWK Set: %v", err)
	}
	keys, err := auth.NewStaticKeys(set)
	if err != nil {
		return usageErrorf(std, "token inspect: %v", err)
	}
	v, err := auth.NewValidator(auth.ValidatorConfig{
		Issuer: *iss, Audience: *aud, Algorithms: strings.Split(*algs, ","), Keys: keys, Now: now,
	})
	if err != nil {
		return usageErrorf(std, "token inspect: %v", err)
	}
	_, claims, err := v.ValidateClaims(token)
	if err != nil {
		fmt.Fprintf(std.err, "moat: token refused: %v\n", strings.TrimPrefix(err.Error(), "moat/auth: "))
		return exitRefused
	}
	var pretty map[string]any
	if err := json.Unmarshal(claims, &pretty); err != nil {
		fmt.Fprintf(std.err, "moat: token refused: claims: %v\n", err)
		return exitRefused
	}
	enc := json.NewEncoder(std.out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(pretty)
	return exitOK
}

// readJWKS reads a JWK Set from a file or an https URL (http only on a
// loopback host: keys fetched in the clear could be anyone's).
func readJWKS(ctx context.Context, where string) ([]byte, error) {
	if strings.HasPrefix(where, "https://") || strings.HasPrefix(where, "http://") {
		u, err := url.Parse(where)
		if err != nil || u.Host == "" {
			return nil, errors.New("the JWKS URL is not an absolute URL")
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return nil, errors.New("fetch the JWKS over https (http only on a loopback host)")
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
		if err != nil {
			return nil, err
		}
		hc := &http.Client{CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if r.URL.Scheme != "https" && !(r.URL.Scheme == "http" && loopbackHost(r.URL.Hostname())) {
				return errors.New("redirected away from https")
			}
			return nil
		}}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetching JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetching JWKS: %s", resp.Status)
		}
		return readLimited(resp.Body, maxJWKSSize)
	}
	f, err := os.Open(where)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, maxJWKSSize)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("input too large")
	}
	return b, nil
}

// maxInputFile bounds what the commands read of an input file (keys,
// certificates, attestations, tokens, pin sets, manifests): a device such
// as /dev/zero given by mistake gets an error, not all the memory.
const maxInputFile = 32 << 20

// readFile reads an input file of at most maxInputFile bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readLimited(f, maxInputFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
