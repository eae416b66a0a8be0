package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"image/png"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/moatsec/moat/stepup"
)

func init() {
	register(command{name: "otp", summary: "one-time passwords: otpauth URIs, QR codes, codes, verification", run: runOTP})
}

func runOTP(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "otp", []subcommand{
		{name: "uri", summary: "print an otpauth:// URI (a new random secret unless --secret is given)", run: runOTPURI},
		{name: "qr", summary: "write the otpauth:// URI as a QR code PNG", run: runOTPQR},
		{name: "code", summary: "print the TOTP code at a time, or the HOTP code for a counter", run: runOTPCode},
		{name: "verify", summary: "check a code (exit 0 valid, 1 invalid)", run: runOTPVerify},
	}, args)
}

// otpFlags are the flags every otp subcommand shares.
type otpFlags struct {
	secret    string
	algorithm string
	digits    int
	period    int
	hotp      bool
	counter   uint64
}

func (o *otpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.secret, "secret", "", "base32 secret (spaces, hyphens, lower case and missing padding accepted); defaults to $MOAT_OTP_SECRET")
	fs.StringVar(&o.algorithm, "algorithm", "SHA1", "HMAC algorithm: SHA1, SHA256 or SHA512")
	fs.IntVar(&o.digits, "digits", 6, "code length: 6, 7 or 8")
	fs.IntVar(&o.period, "period", 30, "TOTP time step in seconds")
	fs.BoolVar(&o.hotp, "hotp", false, "HOTP (RFC 4226, counter-based) instead of TOTP")
	fs.Uint64Var(&o.counter, "counter", 0, "HOTP counter")
}

// key builds the key from the flags; required says whether a missing
// secret is an error (otherwise a random one is made).
func (o *otpFlags) key(std stdio, required bool) (stepup.OTPKey, bool, error) {
	alg, err := stepup.ParseAlgorithm(o.algorithm)
	if err != nil {
		return stepup.OTPKey{}, false, err
	}
	s := o.secret
	if s == "" && std.getenv != nil {
		s = std.getenv("MOAT_OTP_SECRET")
	}
	var secret []byte
	generated := false
	switch {
	case s != "":
		if secret, err = stepup.ParseSecret(s); err != nil {
			return stepup.OTPKey{}, false, err
		}
	case required:
		return stepup.OTPKey{}, false, fmt.Errorf("--secret (or $MOAT_OTP_SECRET) is required")
	default:
		secret = make([]byte, alg.SeedSize())
		if _, err := rand.Read(secret); err != nil {
			return stepup.OTPKey{}, false, err
		}
		generated = true
	}
	// OTPKey reads 0 as the default; on the command line 0 is a mistake.
	if o.period <= 0 {
		return stepup.OTPKey{}, false, fmt.Errorf("--period must be a positive number of seconds")
	}
	if o.digits <= 0 {
		return stepup.OTPKey{}, false, fmt.Errorf("--digits must be 6, 7 or 8")
	}
	k := stepup.OTPKey{Secret: secret, Algorithm: alg, Digits: o.digits, Period: o.period}
	if _, err := k.HOTP(0); err != nil { // validates digits and period
		return stepup.OTPKey{}, false, err
	}
	return k, generated, nil
}

func (o *otpFlags) pquernaAlg(a stepup.Algorithm) otp.Algorithm {
	switch a {
	case stepup.SHA256:
		return otp.AlgorithmSHA256
	case stepup.SHA512:
		return otp.AlgorithmSHA512
	}
	return otp.AlgorithmSHA1
}

// uri builds the otpauth URI with pquerna/otp.
func (o *otpFlags) uri(k stepup.OTPKey, issuer, account string) (*otp.Key, error) {
	if o.hotp {
		key, err := hotp.Generate(hotp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: k.Secret,
			Digits: otp.Digits(k.Digits), Algorithm: o.pquernaAlg(k.Algorithm)})
		if err != nil {
			return nil, err
		}
		// The key URI format requires the initial counter for HOTP.
		return otp.NewKeyFromURL(key.URL() + "&counter=" + strconv.FormatUint(o.counter, 10))
	}
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: k.Secret, Period: uint(k.Period),
		Digits: otp.Digits(k.Digits), Algorithm: o.pquernaAlg(k.Algorithm)})
}

func runOTPURI(_ context.Context, std stdio, args []string) int {
	_, code := otpURI(std, "uri", "moat otp uri --issuer NAME --account NAME [--secret BASE32] [--algorithm SHA1] [--digits 6] [--period 30] [--hotp --counter N]", args, nil)
	return code
}

func runOTPQR(_ context.Context, std stdio, args []string) int {
	var out string
	var size int
	key, code := otpURI(std, "qr", "moat otp qr --issuer NAME --account NAME --out FILE.png [--size 256] [uri flags]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "PNG file to write (\"-\" for standard output)")
		fs.IntVar(&size, "size", 256, "width and height in pixels")
	})
	if key == nil {
		return code
	}
	if out == "" || (out == "-" && std.isTerminal) {
		return usageErrorf(std, "otp qr: --out FILE is required (use --out - to write the PNG to a pipe)")
	}
	if size < 64 || size > 4096 {
		return usageErrorf(std, "otp qr: --size must be 64..4096")
	}
	img, err := key.Image(size, size)
	if err != nil {
		fmt.Fprintf(std.err, "moat otp qr: %v\n", err)
		return exitRefused
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		fmt.Fprintf(std.err, "moat otp qr: %v\n", err)
		return exitRefused
	}
	if out == "-" {
		_, _ = std.out.Write(buf.Bytes())
		return exitOK
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		return usageErrorf(std, "otp qr: %v", err)
	}
	return exitOK
}

// otpURI parses the URI flags, prints the URI (for "uri") and returns the
// key; on failure it returns nil and the exit code.
func otpURI(std stdio, name, usageLine string, args []string, extra func(*flag.FlagSet)) (*otp.Key, int) {
	fs := newFlags(std, "otp "+name, usageLine)
	var o otpFlags
	o.register(fs)
	var issuer, account string
	fs.StringVar(&issuer, "issuer", "", "issuer shown in the authenticator app (required)")
	fs.StringVar(&account, "account", "", "account name shown in the authenticator app (required)")
	if extra != nil {
		extra(fs)
	}
	if code, ok := parseFlags(std, fs, args); !ok {
		return nil, code
	}
	if fs.NArg() != 0 {
		return nil, usageErrorf(std, "otp %s takes no arguments", name)
	}
	if issuer == "" || account == "" {
		return nil, usageErrorf(std, "otp %s: --issuer and --account are required", name)
	}
	if strings.Contains(issuer, ":") {
		// The label is ISSUER:ACCOUNT: a colon in the issuer makes it ambiguous.
		return nil, usageErrorf(std, "otp %s: --issuer must not contain a colon", name)
	}
	k, generated, err := o.key(std, false)
	if err != nil {
		return nil, usageErrorf(std, "otp %s: %v", name, err)
	}
	key, err := o.uri(k, issuer, account)
	if err != nil {
		return nil, usageErrorf(std, "otp %s: %v", name, err)
	}
	if name == "uri" {
		fmt.Fprintln(std.out, key.URL())
		if generated {
			fmt.Fprintf(std.err, "moat otp uri: new random secret %s\n", stepup.EncodeSecret(k.Secret))
		}
	}
	return key, exitOK
}

// parseUnixAt parses an --at flag given in Unix seconds; empty means now.
func parseUnixAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("--at must be UNIX seconds ≥ 0, not %q", s)
	}
	return time.Unix(n, 0), nil
}

func runOTPCode(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "otp code", "moat otp code --secret BASE32 [--algorithm SHA1|SHA256|SHA512] [--digits 6|7|8] [--period 30] [--at UNIX_SECONDS] | --hotp --counter N")
	var o otpFlags
	o.register(fs)
	var at string
	fs.StringVar(&at, "at", "", "UNIX time in seconds (default now)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "otp code takes no arguments")
	}
	k, _, err := o.key(std, true)
	if err != nil {
		return usageErrorf(std, "otp code: %v", err)
	}
	var code string
	if o.hotp {
		code, err = k.HOTP(o.counter)
	} else {
		t, perr := parseUnixAt(at)
		if perr != nil {
			return usageErrorf(std, "otp code: %v", perr)
		}
		code, err = k.TOTP(t)
	}
	if err != nil {
		return usageErrorf(std, "otp code: %v", err)
	}
	fmt.Fprintln(std.out, code)
	return exitOK
}

func runOTPVerify(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "otp verify", "moat otp verify --secret BASE32 [--algorithm ...] [--digits 6] [--period 30] [--at UNIX_SECONDS] [--skew 1] CODE | --hotp --counter N [--look-ahead 10] CODE")
	var o otpFlags
	o.register(fs)
	var at string
	var skew, lookAhead int
	fs.StringVar(&at, "at", "", "UNIX time in seconds (default now)")
	fs.IntVar(&skew, "skew", stepup.DefaultSkew, "TOTP steps accepted before and after the current one (0..2)")
	fs.IntVar(&lookAhead, "look-ahead", stepup.DefaultLookAhead, "HOTP counters accepted after --counter (0..100)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageErrorf(std, "otp verify takes one argument: the code")
	}
	k, _, err := o.key(std, true)
	if err != nil {
		return usageErrorf(std, "otp verify: %v", err)
	}
	code := fs.Arg(0)
	if o.hotp {
		if lookAhead < 0 || lookAhead > 100 {
			return usageErrorf(std, "otp verify: --look-ahead must be 0..100")
		}
		c, ok := k.VerifyHOTP(code, o.counter, o.counter+uint64(lookAhead))
		if !ok {
			fmt.Fprintln(std.out, "invalid")
			return exitRefused
		}
		fmt.Fprintf(std.out, "valid: counter %d (next %d)\n", c, c+1)
		return exitOK
	}
	if skew < 0 || skew > 2 {
		return usageErrorf(std, "otp verify: --skew must be 0..2")
	}
	t, err := parseUnixAt(at)
	if err != nil {
		return usageErrorf(std, "otp verify: %v", err)
	}
	step, ok := k.VerifyTOTP(code, t, skew, -1)
	if !ok {
		fmt.Fprintln(std.out, "invalid")
		return exitRefused
	}
	now, _ := k.Step(t)
	fmt.Fprintf(std.out, "valid: step %d (%+d)\n", step, step-now)
	return exitOK
}
