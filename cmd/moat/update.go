package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/moatsec/moat/update"
)

func init() {
	register(command{name: "update", summary: "signed over-the-air updates of web resources", run: runUpdate})
}

func runUpdate(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "update", []subcommand{
		{name: "keygen", summary: "make a signing key (private JWK file)", run: runUpdateKeygen},
		{name: "root", summary: "make (init) or rotate a trust root", run: runUpdateRoot},
		{name: "publish", summary: "publish a directory as a new bundle version", run: runUpdatePublish},
		{name: "verify", summary: "check a manifest's signatures, threshold and expiry", run: runUpdateVerify},
		{name: "apply", summary: "check a server and install the newest bundle", run: runUpdateApply},
	}, args)
}

func runUpdateRoot(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "update root", []subcommand{
		{name: "init", summary: "make a first root (version 1)", run: runUpdateRootInit},
		{name: "rotate", summary: "make the next root version", run: runUpdateRootRotate},
	}, args)
}

func runUpdateKeygen(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update keygen", "moat update keygen --out KEYFILE [--alg EdDSA|ES256]")
	out := fs.String("out", "", "file to write the private key to (must not exist; mode 0600)")
	alg := fs.String("alg", update.EdDSA, "key algorithm: EdDSA (Ed25519) or ES256 (P-256)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *out == "" || fs.NArg() != 0 {
		return usageErrorf(std, "update keygen needs --out KEYFILE and no arguments")
	}
	k, err := update.GenerateKey(*alg)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	b, err := update.MarshalPrivateKey(k)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	kid, _ := update.KeyID(k.Public())
	fmt.Fprintf(std.out, "wrote %s key %s to %s\n", *alg, kid, *out)
	return exitOK
}

// readSigners reads private key files.
func readSigners(paths []string) ([]crypto.Signer, error) {
	var out []crypto.Signer
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			return nil, err
		}
		k, err := update.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// readPublicKeys reads key files, private or public JWKs, and returns
// their public keys.
func readPublicKeys(paths []string) ([]jose.JSONWebKey, error) {
	var out []jose.JSONWebKey
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			return nil, err
		}
		var pub crypto.PublicKey
		if k, err := update.ParsePrivateKey(b); err == nil {
			pub = k.Public()
		} else {
			var j jose.JSONWebKey
			if err := j.UnmarshalJSON(b); err != nil || !j.IsPublic() {
				return nil, fmt.Errorf("%s: not a key file", p)
			}
			pub = j.Key
		}
		kid, err := update.KeyID(pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, jose.JSONWebKey{Key: pub, KeyID: kid})
	}
	return out, nil
}

func publicOf(signers []crypto.Signer) []jose.JSONWebKey {
	out := make([]jose.JSONWebKey, 0, len(signers))
	for _, s := range signers {
		p, _ := update.PublicKeyOf(s)
		out = append(out, p)
	}
	return out
}

func writeNew(path string, data []byte) error {
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func runUpdateRootInit(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update root init",
		"moat update root init --key KEYFILE [--key KEYFILE ...] [--threshold N] [--signer KEYFILE ...] [--signer-threshold N] [--expires DURATION] --out ROOT.json")
	var keys, signers multiFlag
	fs.Var(&keys, "key", "root key (private key file) that signs this and the next root; repeat for several")
	fs.Var(&signers, "signer", "key allowed to sign manifests (key file); repeat; default: the root keys")
	threshold := fs.Int("threshold", 1, "root signatures the next root needs")
	signerThreshold := fs.Int("signer-threshold", 1, "signatures a manifest needs")
	expires := fs.Duration("expires", 365*24*time.Hour, "how long the root is trusted")
	out := fs.String("out", "", "file to write the root to")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if len(keys) == 0 || *out == "" || fs.NArg() != 0 || *expires <= 0 {
		return usageErrorf(std, "update root init needs --key and --out, and a positive --expires")
	}
	ks, err := readSigners(keys)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	manifestKeys := publicOf(ks)
	if len(signers) > 0 {
		if manifestKeys, err = readPublicKeys(signers); err != nil {
			return usageErrorf(std, "%v", err)
		}
	}
	doc, err := update.SignRoot(update.Root{Version: 1, Expires: time.Now().Add(*expires), RootKeys: publicOf(ks),
		RootThreshold: *threshold, ManifestKeys: manifestKeys, ManifestThreshold: *signerThreshold}, ks...)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	if _, err := update.ParseRoot(doc); err != nil {
		fmt.Fprintf(std.err, "moat: the new root does not verify: %v\n", err)
		return exitRefused
	}
	if err := writeNew(*out, doc); err != nil {
		return usageErrorf(std, "%v", err)
	}
	fmt.Fprintf(std.out, "wrote root version 1 (%d root keys, threshold %d; %d manifest keys, threshold %d) to %s\n",
		len(ks), *threshold, len(manifestKeys), *signerThreshold, *out)
	return exitOK
}

func runUpdateRootRotate(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update root rotate",
		"moat update root rotate --root OLD.json --key KEYFILE ... --new-key KEYFILE ... [--threshold N] [--signer KEYFILE ...] [--signer-threshold N] [--expires DURATION] --out NEW.json")
	var keys, newKeys, signers multiFlag
	fs.Var(&keys, "key", "a current root key (private key file) signing the rotation; repeat to reach the current threshold")
	fs.Var(&newKeys, "new-key", "a root key of the new root (private key file; it signs too); repeat")
	fs.Var(&signers, "signer", "key allowed to sign manifests; repeat; default: keep the current manifest keys")
	oldPath := fs.String("root", "", "the current root")
	threshold := fs.Int("threshold", 0, "root signatures the next root needs (default: the current threshold, at most the number of new keys)")
	signerThreshold := fs.Int("signer-threshold", 0, "signatures a manifest needs (default: keep the current one)")
	expires := fs.Duration("expires", 365*24*time.Hour, "how long the new root is trusted")
	out := fs.String("out", "", "file to write the new root to")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *oldPath == "" || len(keys) == 0 || len(newKeys) == 0 || *out == "" || fs.NArg() != 0 || *expires <= 0 {
		return usageErrorf(std, "update root rotate needs --root, --key, --new-key and --out")
	}
	oldDoc, err := readFile(*oldPath)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	old, err := update.ParseRoot(oldDoc)
	if err != nil {
		fmt.Fprintf(std.err, "moat: current root: %v\n", err)
		return exitRefused
	}
	oldKeys, err := readSigners(keys)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	nks, err := readSigners(newKeys)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	cur := old.Root()
	next := update.Root{Version: cur.Version + 1, Expires: time.Now().Add(*expires), RootKeys: publicOf(nks),
		RootThreshold: *threshold, ManifestKeys: cur.ManifestKeys, ManifestThreshold: cur.ManifestThreshold}
	if next.RootThreshold == 0 {
		next.RootThreshold = min(cur.RootThreshold, len(nks))
	}
	if len(signers) > 0 {
		if next.ManifestKeys, err = readPublicKeys(signers); err != nil {
			return usageErrorf(std, "%v", err)
		}
		next.ManifestThreshold = 1
	}
	if *signerThreshold != 0 {
		next.ManifestThreshold = *signerThreshold
	}
	all := append(append([]crypto.Signer(nil), oldKeys...), nks...)
	doc, err := update.SignRoot(next, dedupe(all)...)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	if _, err := old.Update(doc); err != nil {
		fmt.Fprintf(std.err, "moat: the new root would be refused: %v\n", err)
		return exitRefused
	}
	if err := writeNew(*out, doc); err != nil {
		return usageErrorf(std, "%v", err)
	}
	fmt.Fprintf(std.out, "wrote root version %d to %s\n", next.Version, *out)
	return exitOK
}

// dedupe drops repeated keys (a key both old and new signs once).
func dedupe(ks []crypto.Signer) []crypto.Signer {
	seen := map[string]bool{}
	var out []crypto.Signer
	for _, k := range ks {
		id, _ := update.KeyID(k.Public())
		if !seen[id] {
			seen[id] = true
			out = append(out, k)
		}
	}
	return out
}

func runUpdatePublish(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update publish",
		"moat update publish --dir DIR --app ID --platform P --app-versions RANGE --version N --key KEYFILE [--key ...] --out REPO_DIR [--mandatory] [--expires DURATION] [--deflate] [--root ROOT.json]")
	var keys multiFlag
	fs.Var(&keys, "key", "manifest signing key (private key file); repeat to reach the root's threshold")
	dir := fs.String("dir", "", "directory of web resources to publish")
	app := fs.String("app", "", "app id")
	platform := fs.String("platform", "", "platform (ios, android, ...)")
	ranges := fs.String("app-versions", "", `native app versions the bundle is for, such as ">=2.1 <3" or "*"`)
	version := fs.Uint64("version", 0, "new bundle version (greater than every published one)")
	out := fs.String("out", "", "release repository directory (a file store)")
	mandatory := fs.Bool("mandatory", false, "servers refuse protected calls from clients without this version")
	expires := fs.Duration("expires", 30*24*time.Hour, "how long clients accept the manifest")
	deflate := fs.Bool("deflate", false, "compress bundle entries")
	rootPath := fs.String("root", "", "if set, check that the signed manifest verifies under this root")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *dir == "" || *app == "" || *platform == "" || *ranges == "" || *version == 0 || len(keys) == 0 || *out == "" || fs.NArg() != 0 || *expires <= 0 {
		return usageErrorf(std, "update publish needs --dir, --app, --platform, --app-versions, --version, --key and --out")
	}
	ks, err := readSigners(keys)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	var root []byte
	if *rootPath != "" {
		if root, err = readFile(*rootPath); err != nil {
			return usageErrorf(std, "%v", err)
		}
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		return usageErrorf(std, "--dir %s is not a directory", *dir)
	}
	store, err := update.NewFileStore(*out)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	p, err := update.NewPublisher(update.PublisherConfig{Store: store, Keys: ks, Root: root, Deflate: *deflate})
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	rel, err := p.Publish(ctx, os.DirFS(*dir), update.ReleaseSpec{App: *app, Platform: *platform, AppVersions: *ranges,
		Version: *version, Mandatory: *mandatory, Expires: time.Now().Add(*expires)})
	if errors.Is(err, update.ErrMalformed) && !errors.Is(err, update.ErrUnsafePath) {
		return usageErrorf(std, "%v", err)
	}
	if err != nil {
		fmt.Fprintf(std.err, "moat: publish refused: %v\n", err)
		return exitRefused
	}
	relDir := filepath.Join(*out, *app, *platform, fmt.Sprint(*version))
	fmt.Fprintf(std.out, "published %s/%s bundle version %d (expires %s)\n", *app, *platform, *version, rel.Expires.Format(time.RFC3339))
	fmt.Fprintf(std.out, "  manifest: %s\n", filepath.Join(relDir, "manifest.json"))
	for _, b := range rel.Bundles {
		name := "full.zip"
		if b.From != 0 {
			name = fmt.Sprintf("from-%d.zip", b.From)
		}
		fmt.Fprintf(std.out, "  bundle:   %s (%d bytes)\n", filepath.Join(relDir, name), b.Size)
	}
	return exitOK
}

func runUpdateVerify(_ context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update verify", "moat update verify --root ROOT.json --manifest FILE")
	rootPath := fs.String("root", "", "the trusted root (the newest one)")
	manifestPath := fs.String("manifest", "", "the signed manifest")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *rootPath == "" || *manifestPath == "" || fs.NArg() != 0 {
		return usageErrorf(std, "update verify needs --root and --manifest")
	}
	rootDoc, err := readFile(*rootPath)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	doc, err := readFile(*manifestPath)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	root, err := update.ParseRoot(rootDoc)
	if err != nil {
		fmt.Fprintf(std.err, "moat: root refused: %v\n", err)
		return exitRefused
	}
	m, err := root.VerifyManifest(doc, time.Now())
	if err != nil {
		fmt.Fprintf(std.err, "moat: manifest refused: %v\n", err)
		return exitRefused
	}
	fmt.Fprintf(std.out, "valid: %s/%s bundle version %d for app versions %q, %d files, %d bytes, mandatory %v, expires %s (root version %d)\n",
		m.AppID, m.Platform, m.BundleVersion, m.AppVersions, len(m.Files), m.TotalSize(), m.Mandatory,
		m.Expires.Format(time.RFC3339), root.Version())
	return exitOK
}

func runUpdateApply(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "update apply",
		"moat update apply --root ROOT.json --server URL --into DIR [--app ID --platform P] [--app-version V]")
	rootPath := fs.String("root", "", "the root the app ships (newer ones are followed and kept in DIR)")
	server := fs.String("server", "", "the update server: BASE/APP/PLATFORM, or BASE with --app and --platform")
	into := fs.String("into", "", "installation directory; the files are in DIR/current/files")
	app := fs.String("app", "", "app id (default: from the --server URL)")
	platform := fs.String("platform", "", "platform (default: from the --server URL)")
	appVersion := fs.String("app-version", update.AnyAppVersion, `native app version to check bundles against ("*": any)`)
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if *rootPath == "" || *server == "" || *into == "" || fs.NArg() != 0 {
		return usageErrorf(std, "update apply needs --root, --server and --into")
	}
	base, a, p, err := splitServer(*server, *app, *platform)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	root, err := readFile(*rootPath)
	if err != nil {
		return usageErrorf(std, "%v", err)
	}
	cfg := update.ClientConfig{BaseURL: base, App: a, Platform: p, AppVersion: *appVersion, Root: root, Dir: *into}
	var bar *progressBar
	if std.isTerminal {
		bar = &progressBar{w: std.out}
		cfg.Progress = bar.update
	}
	c, err := update.NewClient(cfg)
	if err != nil {
		if errors.Is(err, update.ErrSignature) || errors.Is(err, update.ErrMalformed) {
			fmt.Fprintf(std.err, "moat: %v\n", err)
			return exitRefused
		}
		return usageErrorf(std, "%v", err)
	}
	u, err := c.Check(ctx)
	if err == nil && u == nil {
		fmt.Fprintf(std.out, "up to date (bundle version %d)\n", c.InstalledVersion())
		return exitOK
	}
	if err == nil {
		err = c.Apply(ctx, u)
	}
	bar.finish()
	if err != nil {
		fmt.Fprintf(std.err, "moat: update refused: %v\n", err)
		return exitRefused
	}
	kind := "full bundle"
	if u.From != 0 {
		kind = fmt.Sprintf("differential bundle from version %d", u.From)
	}
	fmt.Fprintf(std.out, "installed bundle version %d (%s, %d bytes) in %s\n", u.Manifest.BundleVersion, kind, u.Size, c.Path())
	return exitOK
}

// splitServer returns the base URL, app and platform: from the flags when
// given, else from the last two path segments of the URL.
func splitServer(server, app, platform string) (string, string, string, error) {
	if (app == "") != (platform == "") {
		return "", "", "", errors.New("give both --app and --platform, or neither")
	}
	if app != "" {
		return server, app, platform, nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", "", "", fmt.Errorf("--server is not a URL")
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) < 2 || segs[len(segs)-1] == "" || segs[len(segs)-2] == "" {
		return "", "", "", errors.New("--server must end with /APP/PLATFORM unless --app and --platform are given")
	}
	app, platform = segs[len(segs)-2], segs[len(segs)-1]
	u.Path = "/" + strings.Join(segs[:len(segs)-2], "/")
	return u.String(), app, platform, nil
}

// progressBar draws download and install progress on a terminal.
type progressBar struct {
	w     io.Writer
	drawn bool
}

func (b *progressBar) update(p update.Progress) {
	const width = 30
	if p.Total <= 0 {
		fmt.Fprintf(b.w, "\r%-8s %8.1f MB", p.Phase, float64(p.Done)/1e6)
	} else {
		n := int(p.Done * width / p.Total)
		fmt.Fprintf(b.w, "\r%-8s [%s%s] %3d%% %.1f/%.1f MB", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n),
			p.Done*100/p.Total, float64(p.Done)/1e6, float64(p.Total)/1e6)
	}
	b.drawn = true
}

func (b *progressBar) finish() {
	if b != nil && b.drawn {
		fmt.Fprintln(b.w)
	}
}
