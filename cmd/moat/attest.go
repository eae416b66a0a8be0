package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moatsec/moat/attest"
	"github.com/moatsec/moat/kv"
)

func init() {
	register(command{name: "attest", summary: "verify app attestations offline (App Attest, Android key, Play Integrity)", run: runAttest})
}

func runAttest(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "attest", []subcommand{
		{name: "verify", summary: "verify an attestation (apple-appattest, android-key, play-integrity, webauthn)", run: runAttestVerify},
		{name: "assert", summary: "verify an App Attest assertion", run: runAttestAssert},
	}, args)
}

const attestVerifyUsage = `moat attest verify --format FORMAT --in FILE --at RFC3339 [format flags]

  apple-appattest: --app-id TEAM.BUNDLE --key-id B64
                   (--client-data FILE | --client-data-text STR | --client-data-hash B64)
                   --env production|development [--root PEM]
  android-key:     (--challenge B64 | --challenge-text STR) [--roots FILE ...] [--package NAME]
                   [--min-level software|tee|strongbox] [--revocations FILE] [--require-verified-boot]
  play-integrity:  --decryption-key B64 --verification-key PEM --package NAME
                   (--nonce B64 | --request-hash B64) [--cert-digest B64 ...] [--max-age DURATION]
  webauthn:        --challenge B64 --origin URL --rp-id ID [--roots FILE ...] [--require-trusted]
                   [--insecure-allow-sha1]   (--in: RegistrationResponseJSON, or an object with "credential")

Prints one JSON object with "valid" and "reason". Exit 0 valid, 1 refused, 2 usage.`

// attestFlags holds every flag of "attest verify"; which are allowed
// depends on --format.
type attestFlags struct {
	format, in, at                                  string
	appID, keyID, clientData, clientDataText, cdh   string
	env, root                                       string
	challenge, challengeText, pkg, minLevel, revocs string
	roots, certDigests                              multiFlag
	requireBoot, requireTrusted, allowSHA1          bool
	decKey, verKey, nonce, requestHash, maxAge      string
	origin, rpID                                    string
}

// formatFlags lists the flags each format accepts besides --format, --in
// and --at.
var formatFlags = map[string][]string{
	attest.FormatAppleAppAttest: {"app-id", "key-id", "client-data", "client-data-text", "client-data-hash", "env", "root"},
	attest.FormatAndroidKey:     {"challenge", "challenge-text", "roots", "package", "min-level", "revocations", "require-verified-boot"},
	attest.FormatPlayIntegrity:  {"decryption-key", "verification-key", "package", "nonce", "request-hash", "cert-digest", "max-age"},
	formatWebAuthn:              {"challenge", "origin", "rp-id", "roots", "require-trusted", "insecure-allow-sha1"},
}

const formatWebAuthn = "webauthn"

func runAttestVerify(ctx context.Context, std stdio, args []string) int {
	var f attestFlags
	fs := newFlags(std, "attest verify", attestVerifyUsage)
	fs.StringVar(&f.format, "format", "", "apple-appattest, android-key, play-integrity or webauthn")
	fs.StringVar(&f.in, "in", "", "the attestation: CBOR or base64 (App Attest), PEM chain (Android), token (Play), credential JSON (WebAuthn)")
	fs.StringVar(&f.at, "at", "", "verification time, RFC 3339")
	fs.StringVar(&f.appID, "app-id", "", "App Attest app id, TEAMID.BUNDLEID")
	fs.StringVar(&f.keyID, "key-id", "", "App Attest key id, base64")
	fs.StringVar(&f.clientData, "client-data", "", "file whose SHA-256 is the clientDataHash")
	fs.StringVar(&f.clientDataText, "client-data-text", "", "text whose SHA-256 is the clientDataHash")
	fs.StringVar(&f.cdh, "client-data-hash", "", "clientDataHash, base64, appended as given (not hashed)")
	fs.StringVar(&f.env, "env", "", "App Attest environment: production or development")
	fs.StringVar(&f.root, "root", "", "App Attest root PEM file (default: the embedded Apple root)")
	fs.StringVar(&f.challenge, "challenge", "", "expected challenge, base64")
	fs.StringVar(&f.challengeText, "challenge-text", "", "expected challenge as text")
	fs.Var(&f.roots, "roots", "trusted roots file, PEM bundle or JSON array of PEM (repeatable; default: embedded Google roots, or none for webauthn)")
	fs.StringVar(&f.pkg, "package", "", "expected package name")
	fs.StringVar(&f.minLevel, "min-level", "tee", "Android minimum security level: software, tee or strongbox")
	fs.StringVar(&f.revocs, "revocations", "", "Google attestation status list JSON file (default: none checked)")
	fs.BoolVar(&f.requireBoot, "require-verified-boot", false, "Android: refuse unless boot is VERIFIED and the device locked")
	fs.StringVar(&f.decKey, "decryption-key", "", "Play Integrity decryption key, base64")
	fs.StringVar(&f.verKey, "verification-key", "", "Play Integrity verification key: PEM file, PEM text or base64 DER")
	fs.StringVar(&f.nonce, "nonce", "", "Play Integrity expected nonce, base64")
	fs.StringVar(&f.requestHash, "request-hash", "", "Play Integrity expected request hash, base64")
	fs.Var(&f.certDigests, "cert-digest", "Play signing certificate SHA-256, base64 (repeatable; default: not checked)")
	fs.StringVar(&f.maxAge, "max-age", "", "Play Integrity maximum verdict age (default 5m)")
	fs.StringVar(&f.origin, "origin", "", "WebAuthn expected origin")
	fs.StringVar(&f.rpID, "rp-id", "", "WebAuthn relying party id")
	fs.BoolVar(&f.requireTrusted, "require-trusted", false, "WebAuthn: refuse unless the statement chains to one of --roots")
	fs.BoolVar(&f.allowSHA1, "insecure-allow-sha1", false, "WebAuthn: accept statements signed with SHA-1 (RS1)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "attest verify takes no arguments")
	}
	allowed, ok := formatFlags[f.format]
	if !ok {
		return usageErrorf(std, "--format must be apple-appattest, android-key, play-integrity or webauthn")
	}
	if code := checkFlagsFor(std, fs, f.format, allowed); code != exitOK {
		return code
	}
	if f.in == "" {
		return usageErrorf(std, "--in is required")
	}
	at, err := time.Parse(time.RFC3339Nano, f.at)
	if err != nil {
		return usageErrorf(std, "--at must be an RFC 3339 time")
	}
	switch f.format {
	case attest.FormatAppleAppAttest:
		return verifyAppAttestCLI(std, &f, at)
	case attest.FormatAndroidKey:
		return verifyAndroidKeyCLI(std, &f, at)
	case attest.FormatPlayIntegrity:
		return verifyPlayIntegrityCLI(ctx, std, &f, at)
	default:
		return verifyWebAuthnCLI(std, &f, at)
	}
}

// checkFlagsFor refuses flags that do not belong to format.
func checkFlagsFor(std stdio, fs *flag.FlagSet, format string, allowed []string) int {
	ok := map[string]bool{"format": true, "in": true, "at": true}
	for _, a := range allowed {
		ok[a] = true
	}
	bad := ""
	fs.Visit(func(fl *flag.Flag) {
		if !ok[fl.Name] && bad == "" {
			bad = fl.Name
		}
	})
	if bad != "" {
		return usageErrorf(std, "--%s does not apply to --format %s", bad, format)
	}
	return exitOK
}

// oneOf returns the name of the single non-empty value, or a usage error.
func oneOf(std stdio, names []string, values ...string) (int, int) {
	idx := -1
	for i, v := range values {
		if v != "" {
			if idx >= 0 {
				return -1, usageErrorf(std, "give only one of --%s", strings.Join(names, ", --"))
			}
			idx = i
		}
	}
	if idx < 0 {
		return -1, usageErrorf(std, "one of --%s is required", strings.Join(names, ", --"))
	}
	return idx, exitOK
}

// attestOutput prints the JSON verdict and returns the exit code.
func attestOutput(std stdio, err error, fields map[string]any) int {
	out := map[string]any{"valid": err == nil, "reason": ""}
	for k, v := range fields {
		out[k] = v
	}
	code := exitOK
	if err != nil {
		out["reason"] = err.Error()
		code = exitRefused
		var e *attest.Error
		if errors.As(err, &e) {
			out["code"] = e.Code
		}
	} else {
		out["reason"] = "ok"
	}
	b, merr := json.MarshalIndent(out, "", "  ")
	if merr != nil {
		fmt.Fprintf(std.err, "moat: %v\n", merr)
		return exitUsage
	}
	fmt.Fprintln(std.out, string(b))
	return code
}

// readBinaryOrB64 reads a file holding raw bytes or base64 text.
func readBinaryOrB64(path string) ([]byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(string(b)); t != "" && isBase64Text(t) {
		if d, err := decodeB64Flag(t); err == nil {
			return d, nil
		}
	}
	return b, nil
}

func isBase64Text(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case strings.ContainsRune("+/=-_\r\n \t", r):
		default:
			return false
		}
	}
	return true
}

// decodeB64Flag decodes standard or URL base64, padded or not.
func decodeB64Flag(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// readECPublicKey reads an EC public key (see readPublicKey for the forms).
func readECPublicKey(v string) (*ecdsa.PublicKey, error) {
	k, err := readPublicKey(v)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an EC public key")
	}
	return ec, nil
}

// readRoots reads PEM bundles or JSON arrays of PEM.
func readRoots(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			return nil, err
		}
		var cs []*x509.Certificate
		if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
			cs, err = attest.ParseRootsJSON(b)
		} else {
			cs, err = attest.ParseCertificatesPEM(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

func verifyAppAttestCLI(std stdio, f *attestFlags, at time.Time) int {
	if f.appID == "" || f.keyID == "" {
		return usageErrorf(std, "--app-id and --key-id are required")
	}
	env := attest.Environment(f.env)
	if env != attest.Production && env != attest.Development {
		return usageErrorf(std, "--env must be production or development")
	}
	i, code := oneOf(std, []string{"client-data", "client-data-text", "client-data-hash"}, f.clientData, f.clientDataText, f.cdh)
	if code != exitOK {
		return code
	}
	var cdh []byte
	switch i {
	case 0:
		b, err := readFile(f.clientData)
		if err != nil {
			return usageErrorf(std, "--client-data: %v", err)
		}
		s := sha256.Sum256(b)
		cdh = s[:]
	case 1:
		s := sha256.Sum256([]byte(f.clientDataText))
		cdh = s[:]
	default:
		b, err := decodeB64Flag(f.cdh)
		if err != nil || len(b) == 0 {
			return usageErrorf(std, "--client-data-hash must be base64")
		}
		cdh = b
	}
	keyID, err := decodeB64Flag(f.keyID)
	if err != nil {
		return usageErrorf(std, "--key-id must be base64")
	}
	obj, err := readBinaryOrB64(f.in)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	roots := []*x509.Certificate{attest.AppleAppAttestationRoot()}
	if f.root != "" {
		if roots, err = readRoots([]string{f.root}); err != nil {
			return usageErrorf(std, "--root: %v", err)
		}
	}
	v, err := attest.NewAppAttest(attest.AppAttestConfig{
		AppIDs: []string{f.appID}, Roots: roots, Environments: []attest.Environment{env},
		Keys: attest.NewMemoryKeyStore(), Now: func() time.Time { return at },
	})
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	res, err := v.VerifyAttestation(keyID, obj, cdh)
	fields := map[string]any{"format": attest.FormatAppleAppAttest}
	if err == nil {
		fields["counter"] = res.Counter
		fields["environment"] = res.Environment
		fields["key_id"] = base64.StdEncoding.EncodeToString(res.KeyID)
		fields["public_key"] = res.PublicKeyPEM()
		fields["app_id"] = res.AppID
		fields["receipt_bytes"] = len(res.Receipt)
	}
	return attestOutput(std, err, fields)
}

func runAttestAssert(_ context.Context, std stdio, args []string) int {
	const usageLine = "moat attest assert --format apple-appattest --in FILE --public-key PEM --app-id TEAM.BUNDLE (--client-data FILE | --client-data-text STR) --stored-counter N"
	fs := newFlags(std, "attest assert", usageLine)
	format := fs.String("format", "", "apple-appattest")
	in := fs.String("in", "", "the assertion: CBOR or base64")
	pubFlag := fs.String("public-key", "", "the attested key: PEM file, PEM text or base64 DER")
	appID := fs.String("app-id", "", "app id, TEAMID.BUNDLEID")
	cdFile := fs.String("client-data", "", "file holding the client data the app signed")
	cdText := fs.String("client-data-text", "", "the client data the app signed, as text")
	stored := fs.String("stored-counter", "", "the counter stored for the key")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "attest assert takes no arguments")
	}
	if *format != attest.FormatAppleAppAttest {
		return usageErrorf(std, "--format must be apple-appattest")
	}
	if *in == "" || *pubFlag == "" || *appID == "" || *stored == "" {
		return usageErrorf(std, "--in, --public-key, --app-id and --stored-counter are required")
	}
	n, err := strconv.ParseUint(*stored, 10, 32)
	if err != nil {
		return usageErrorf(std, "--stored-counter must be a number from 0 to 4294967295")
	}
	i, code := oneOf(std, []string{"client-data", "client-data-text"}, *cdFile, *cdText)
	if code != exitOK {
		return code
	}
	cd := []byte(*cdText)
	if i == 0 {
		if cd, err = readFile(*cdFile); err != nil {
			return usageErrorf(std, "--client-data: %v", err)
		}
	}
	pub, err := readECPublicKey(*pubFlag)
	if err != nil {
		return usageErrorf(std, "--public-key: %v", err)
	}
	obj, err := readBinaryOrB64(*in)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	sum := sha256.Sum256(cd)
	counter, err := attest.VerifyAppAttestAssertion(obj, pub, *appID, sum[:], uint32(n))
	fields := map[string]any{"format": attest.FormatAppleAppAttest}
	if err == nil {
		fields["counter"] = counter
	}
	return attestOutput(std, err, fields)
}

func verifyAndroidKeyCLI(std stdio, f *attestFlags, at time.Time) int {
	i, code := oneOf(std, []string{"challenge", "challenge-text"}, f.challenge, f.challengeText)
	if code != exitOK {
		return code
	}
	challenge := []byte(f.challengeText)
	if i == 0 {
		var err error
		if challenge, err = decodeB64Flag(f.challenge); err != nil {
			return usageErrorf(std, "--challenge must be base64")
		}
	}
	minLevel, ok := attest.ParseSecurityLevel(f.minLevel)
	if !ok {
		return usageErrorf(std, "--min-level must be software, tee or strongbox")
	}
	b, err := readFile(f.in)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	chain, err := attest.ParseCertificatesPEM(b)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	roots := attest.GoogleAttestationRoots()
	if len(f.roots) > 0 {
		if roots, err = readRoots(f.roots); err != nil {
			return usageErrorf(std, "--roots: %v", err)
		}
	}
	revs, _ := attest.ParseRevocationList([]byte(`{"entries":{}}`))
	if f.revocs != "" {
		if revs, err = attest.LoadRevocationList(f.revocs); err != nil {
			return usageErrorf(std, "--revocations: %v", err)
		}
	}
	fields := map[string]any{"format": attest.FormatAndroidKey, "revocation_checked": f.revocs != ""}
	kd, err := attest.VerifyAndroidKeyChain(chain, roots, revs, at)
	if err != nil {
		return attestOutput(std, err, fields)
	}
	fields["security_level"] = kd.AttestationSecurityLevel.String()
	fields["keymint_security_level"] = kd.KeyMintSecurityLevel.String()
	fields["challenge"] = base64.StdEncoding.EncodeToString(kd.AttestationChallenge)
	fields["attestation_version"] = kd.AttestationVersion
	var pkgs []string
	for _, p := range kd.Packages() {
		pkgs = append(pkgs, p.Name)
	}
	fields["package"] = strings.Join(pkgs, ",")
	if rot := kd.RootOfTrust(); rot != nil {
		fields["verified_boot_state"] = rot.VerifiedBootState.String()
		fields["device_locked"] = rot.DeviceLocked
	}
	err = attest.CheckKeyDescription(kd, attest.KeyDescriptionPolicy{
		Challenge: challenge, MinSecurityLevel: minLevel, Package: f.pkg, InsecureAllowUnverifiedBoot: !f.requireBoot,
	})
	return attestOutput(std, err, fields)
}

func verifyPlayIntegrityCLI(ctx context.Context, std stdio, f *attestFlags, at time.Time) int {
	if f.decKey == "" || f.verKey == "" || f.pkg == "" {
		return usageErrorf(std, "--decryption-key, --verification-key and --package are required")
	}
	i, code := oneOf(std, []string{"nonce", "request-hash"}, f.nonce, f.requestHash)
	if code != exitOK {
		return code
	}
	binding, err := decodeB64Flag(f.nonce + f.requestHash)
	if err != nil || len(binding) == 0 {
		return usageErrorf(std, "--nonce and --request-hash are base64")
	}
	dec, err := decodeB64Flag(f.decKey)
	if err != nil {
		return usageErrorf(std, "--decryption-key must be base64")
	}
	ver, err := readECPublicKey(f.verKey)
	if err != nil {
		return usageErrorf(std, "--verification-key: %v", err)
	}
	var digests [][]byte
	for _, d := range f.certDigests {
		b, err := decodeB64Flag(d)
		if err != nil {
			return usageErrorf(std, "--cert-digest must be base64")
		}
		digests = append(digests, b)
	}
	var maxAge time.Duration
	if f.maxAge != "" {
		if maxAge, err = time.ParseDuration(f.maxAge); err != nil || maxAge <= 0 {
			return usageErrorf(std, "--max-age must be a positive duration")
		}
	}
	tok, err := readFile(f.in)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	now := func() time.Time { return at }
	v, err := attest.NewPlayIntegrity(attest.PlayIntegrityConfig{
		PackageName: f.pkg, DecryptionKey: dec, VerificationKey: ver, CertificateDigests: digests,
		InsecureSkipCertificateDigest: len(digests) == 0, MaxAge: maxAge,
		Replay: kv.NewMemory(kv.MemoryConfig{Now: now}), Now: now,
	})
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	fields := map[string]any{"format": attest.FormatPlayIntegrity, "certificate_digest_checked": len(digests) > 0}
	res, err := v.VerifyToken(ctx, strings.TrimSpace(string(tok)), binding)
	if err == nil {
		want := []string{"nonce", "request_hash"}[i]
		if res.Claims["binding"] != want {
			err = &attest.Error{Code: attest.CodeInvalidAttestation, Reason: attest.ErrChallengeMismatch,
				Detail: "verdict carries a " + res.Claims["binding"] + ", not a " + want}
		}
	}
	if err == nil {
		fields["package"] = res.AppID
		fields["version_code"] = res.VersionCode
		for _, k := range []string{"app_recognition", "device_recognition", "licensing", "certificate_sha256", "binding", "verdict_time"} {
			fields[k] = res.Claims[k]
		}
	}
	return attestOutput(std, err, fields)
}

func verifyWebAuthnCLI(std stdio, f *attestFlags, at time.Time) int {
	if f.challenge == "" || f.origin == "" || f.rpID == "" {
		return usageErrorf(std, "--challenge, --origin and --rp-id are required")
	}
	challenge, err := decodeB64Flag(f.challenge)
	if err != nil || len(challenge) == 0 {
		return usageErrorf(std, "--challenge must be base64")
	}
	roots, err := readRoots(f.roots)
	if err != nil {
		return usageErrorf(std, "--roots: %v", err)
	}
	b, err := readFile(f.in)
	if err != nil {
		return usageErrorf(std, "--in: %v", err)
	}
	var wrapper struct {
		Credential json.RawMessage `json:"credential"`
	}
	if json.Unmarshal(b, &wrapper) == nil && len(wrapper.Credential) > 0 {
		b = wrapper.Credential
	}
	res, err := attest.VerifyWebAuthnRegistration(b, attest.WebAuthnOptions{
		Challenge: challenge, Origin: f.origin, RPID: f.rpID, Roots: roots, At: at, InsecureAllowSHA1: f.allowSHA1,
	})
	fields := map[string]any{"format": formatWebAuthn}
	if err == nil {
		fields["fmt"] = res.Format
		fields["credential_id"] = base64.RawURLEncoding.EncodeToString(res.CredentialID)
		fields["sign_count"] = res.SignCount
		fields["aaguid"] = hex.EncodeToString(res.AAGUID)
		fields["trusted"] = res.Trusted
		fields["user_verified"] = res.UserVerified
		if f.requireTrusted && !res.Trusted {
			err = &attest.Error{Code: attest.CodeInvalidAttestation, Reason: attest.ErrUnknownRoot,
				Detail: "the attestation statement does not chain to --roots"}
		}
	}
	return attestOutput(std, err, fields)
}
