package device

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Action is what a version policy does to a version below its minimum.
type Action string

// Actions. The zero Action is Block.
const (
	// Block refuses the client with [CodeAppVersionBlocked].
	Block Action = "block"
	// Notify lets the call succeed and carries the policy's message to the
	// client once (see [Notice]).
	Notify Action = "notify"
)

// Policy is the app-version policy of one app on one platform.
//
// A client is refused with [CodeAppVersionBlocked] when its version is
// listed in BlockedVersions (whatever Action says: a listed version has a
// known hole), or when it is below MinVersion and Action is Block. Below
// MinVersion with Action Notify, the call succeeds and the client is
// shown Message once. Versions compare under the rules of [Version]: a
// malformed or empty version is below every minimum.
//
// When the client's version code comes from a trustworthy attestation
// verdict (Play Integrity's versionCode, [Client.AttestedVersionCode]) and
// the policy sets MinVersionCode or BlockedVersionCodes, the version code
// decides and the version the client claims is not consulted.
type Policy struct {
	AppID    string `json:"app_id"`
	Platform string `json:"platform"`
	// MinVersion is the lowest allowed version, or "" for no minimum.
	MinVersion string `json:"min_version,omitempty"`
	// Action applies to versions below MinVersion (and version codes below
	// MinVersionCode). The zero value means Block.
	Action Action `json:"action,omitempty"`
	// BlockedVersions are always refused. "1.9" blocks "1.9.0" and
	// "1.9.0+7" (build metadata does not count).
	BlockedVersions []string `json:"blocked_versions,omitempty"`
	// MinVersionCode is the lowest allowed attested version code, or 0.
	MinVersionCode int64 `json:"min_version_code,omitempty"`
	// BlockedVersionCodes are attested version codes that are always
	// refused.
	BlockedVersionCodes []int64 `json:"blocked_version_codes,omitempty"`
	// Message is shown to users of a refused or notified version, in the
	// default language; "" for none.
	Message string `json:"message,omitempty"`
	// Translations maps BCP 47 language tags ("fr", "pt-BR") to the
	// message in that language, chosen by the request's Accept-Language.
	Translations map[string]string `json:"translations,omitempty"`
	// DownloadURL is where users get an allowed version: an https,
	// itms-apps or market URL, or "".
	DownloadURL string `json:"download_url,omitempty"`
	// UpdatedAt and UpdatedBy are set by the store from the change that
	// stored the policy.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Limits on a policy's lists.
const (
	MaxBlockedVersions = 256
	MaxTranslations    = 64
	MaxURLLen          = 2048
)

// downloadSchemes are the URL schemes a download link may use: the web and
// the two app stores' own schemes.
var downloadSchemes = []string{"https", "itms-apps", "market"}

// Validate checks the policy; errors wrap [ErrInvalidPolicy] or
// [ErrInvalid].
func (p Policy) Validate() error {
	if err := checkID("app id", p.AppID); err != nil {
		return err
	}
	if err := checkID("platform", p.Platform); err != nil {
		return err
	}
	if p.MinVersion != "" {
		if _, err := ParseVersion(p.MinVersion); err != nil {
			return fmt.Errorf("%w: min_version: %w", ErrInvalidPolicy, err)
		}
	}
	switch p.Action {
	case "", Block, Notify:
	default:
		return fmt.Errorf("%w: action must be %q or %q, not %q", ErrInvalidPolicy, Block, Notify, p.Action)
	}
	if len(p.BlockedVersions) > MaxBlockedVersions || len(p.BlockedVersionCodes) > MaxBlockedVersions {
		return fmt.Errorf("%w: more than %d blocked versions", ErrInvalidPolicy, MaxBlockedVersions)
	}
	for _, b := range p.BlockedVersions {
		if _, err := ParseVersion(b); err != nil {
			return fmt.Errorf("%w: blocked_versions: %w", ErrInvalidPolicy, err)
		}
	}
	if p.MinVersionCode < 0 {
		return fmt.Errorf("%w: min_version_code is negative", ErrInvalidPolicy)
	}
	for _, c := range p.BlockedVersionCodes {
		if c <= 0 {
			return fmt.Errorf("%w: blocked_version_codes must be positive", ErrInvalidPolicy)
		}
	}
	if err := checkText("message", p.Message, MaxTextLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if len(p.Translations) > MaxTranslations {
		return fmt.Errorf("%w: more than %d translations", ErrInvalidPolicy, MaxTranslations)
	}
	seen := make(map[string]bool, len(p.Translations))
	for tag, text := range p.Translations {
		if !validLanguageTag(tag) {
			return fmt.Errorf("%w: translation key %q is not a language tag", ErrInvalidPolicy, tag)
		}
		if seen[strings.ToLower(tag)] {
			return fmt.Errorf("%w: translation %q given twice", ErrInvalidPolicy, tag)
		}
		seen[strings.ToLower(tag)] = true
		if text == "" {
			return fmt.Errorf("%w: translation %q is empty", ErrInvalidPolicy, tag)
		}
		if err := checkText("translation", text, MaxTextLen); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
	}
	if p.DownloadURL != "" {
		if err := checkDownloadURL(p.DownloadURL); err != nil {
			return err
		}
	}
	return nil
}

func checkDownloadURL(s string) error {
	if len(s) > MaxURLLen {
		return fmt.Errorf("%w: download_url is longer than %d bytes", ErrInvalidPolicy, MaxURLLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return fmt.Errorf("%w: download_url must be printable ASCII without spaces (percent-encode the rest)", ErrInvalidPolicy)
		}
	}
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(downloadSchemes, u.Scheme) {
		return fmt.Errorf("%w: download_url must be an absolute URL with scheme %s", ErrInvalidPolicy, strings.Join(downloadSchemes, ", "))
	}
	if u.Scheme == "https" && u.Host == "" {
		return fmt.Errorf("%w: download_url has no host", ErrInvalidPolicy)
	}
	return nil
}

// verdict is a policy's answer for one client.
type verdict uint8

const (
	pass verdict = iota
	notify
	block
)

// compiledPolicy is a validated policy prepared for the request path.
type compiledPolicy struct {
	min          Version
	hasMin       bool
	blocked      []Version
	minCode      int64
	blockedCodes []int64
	notify       bool
	minVersion   string
	message      string
	translations map[string]string // lower-case keys
	url          string
	revision     int64
	appID        string
	platform     string

	// memo remembers the verdict for each version string seen, so that
	// the request path does not parse and compare every time. It is
	// copy-on-write and bounded by maxMemoVersions.
	memo   atomic.Pointer[map[string]verdict]
	memoMu sync.Mutex
}

// maxMemoVersions bounds the versions a policy remembers verdicts for;
// versions beyond it are evaluated each time.
const maxMemoVersions = 256

// compilePolicy prepares a stored policy. A policy that does not validate
// (a store holding something it should have refused) is an error, so the
// request path fails closed.
func compilePolicy(p Policy) (*compiledPolicy, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("moat/device: stored policy for %s/%s: %w", p.AppID, p.Platform, err)
	}
	c := &compiledPolicy{
		minCode: p.MinVersionCode, notify: p.Action == Notify, minVersion: p.MinVersion,
		message: p.Message, url: p.DownloadURL, revision: p.UpdatedAt.UnixNano(),
		appID: p.AppID, platform: p.Platform,
		blockedCodes: slices.Clone(p.BlockedVersionCodes),
	}
	if p.MinVersion != "" {
		c.min, _ = parseVersion(p.MinVersion)
		c.hasMin = true
	}
	for _, b := range p.BlockedVersions {
		v, _ := parseVersion(b)
		c.blocked = append(c.blocked, v)
	}
	if len(p.Translations) > 0 {
		c.translations = make(map[string]string, len(p.Translations))
		for k, v := range p.Translations {
			c.translations[strings.ToLower(k)] = v
		}
	}
	return c, nil
}

// evaluate decides for a client reporting version and, when an
// attestation verdict carried one, attestedCode (> 0).
func (p *compiledPolicy) evaluate(version string, attestedCode int64) verdict {
	below := p.action()
	if attestedCode > 0 && (p.minCode > 0 || len(p.blockedCodes) > 0) {
		switch {
		case slices.Contains(p.blockedCodes, attestedCode):
			return block
		case attestedCode < p.minCode:
			return below
		}
		return pass
	}
	if m := p.memo.Load(); m != nil {
		if v, ok := (*m)[version]; ok {
			return v
		}
	}
	v := p.evaluateVersion(version)
	p.remember(version, v)
	return v
}

func (p *compiledPolicy) remember(version string, v verdict) {
	p.memoMu.Lock()
	defer p.memoMu.Unlock()
	old := p.memo.Load()
	if old != nil && len(*old) >= maxMemoVersions {
		return
	}
	m := map[string]verdict{}
	if old != nil {
		m = maps.Clone(*old)
	}
	m[strings.Clone(version)] = v
	p.memo.Store(&m)
}

// evaluateVersion decides for a claimed version.
func (p *compiledPolicy) evaluateVersion(version string) verdict {
	below := p.action()
	var v Version
	var ok bool
	if v, ok = parseVersion(version); !ok {
		if p.hasMin {
			return below // malformed or empty: below every minimum
		}
		return pass
	}
	for i := range p.blocked {
		if compareVersions(&v, &p.blocked[i]) == 0 {
			return block
		}
	}
	if p.hasMin && compareVersions(&v, &p.min) < 0 {
		return below
	}
	return pass
}

func (p *compiledPolicy) action() verdict {
	if p.notify {
		return notify
	}
	return block
}
