package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moatsec/moat/device"
)

// Environment variables of "moat device".
const (
	deviceURLEnv   = "MOAT_DEVICE_URL"
	deviceTokenEnv = "MOAT_DEVICE_TOKEN"
)

func init() {
	register(command{name: "device", summary: "list devices, change their status, set app-version policies", run: runDevice})
}

var deviceSubcommands = []subcommand{
	{name: "list", summary: "list and search devices", run: runDeviceList},
	{name: "status", summary: "show one device: status, apps, users", run: runDeviceStatus},
	{name: "set-status", summary: "set a device's (or an app's) status: active, lost, stolen, disabled", run: runDeviceSetStatus},
	{name: "unregister", summary: "forget a device (its apps must register again); not for blocked devices", run: runDeviceUnregister},
	{name: "audit", summary: "show the audit trail of changes", run: runDeviceAudit},
	{name: "policy", summary: "read and set app-version policies (list, get, set, delete)", run: runDevicePolicy},
}

// runDevice dispatches "moat device <subcommand>".
//
// Every subcommand talks to the operator API of package device (mounted
// by the server, for example at https://api.example.com/admin/device):
//
//	--url URL    the API's base URL, or $MOAT_DEVICE_URL
//	--token T    the operator's bearer token, or $MOAT_DEVICE_TOKEN
//	             (prefer the variable: flags show in the process list)
//	--ca FILE    PEM certificates to trust instead of the system roots
//	--json       print the API's JSON instead of text
//
// Plain http:// is refused except to a loopback address, and redirects
// are not followed, so a token never crosses a network in clear. Exit
// codes: 0 ok; 1 refused (401, 403, 404, a redirect, or the server or
// network failed); 2 usage (bad flags, or a 400 for values the server
// does not accept).
func runDevice(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "device", deviceSubcommands, args)
}

// deviceAPI is a client of the operator API.
type deviceAPI struct {
	std    stdio
	base   string // scheme://host/path, without a trailing slash
	token  string
	client *http.Client
	json   bool
}

// deviceFlags adds the connection flags to fs and returns a function
// that builds the client after parsing.
func deviceFlags(std stdio, fs *flag.FlagSet) func() (*deviceAPI, int, bool) {
	base := fs.String("url", "", "operator API base URL (default $"+deviceURLEnv+")")
	token := fs.String("token", "", "operator bearer token (default $"+deviceTokenEnv+"; prefer the variable)")
	ca := fs.String("ca", "", "PEM file of certificates to trust instead of the system roots")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	return func() (*deviceAPI, int, bool) {
		a := &deviceAPI{std: std, token: *token, json: *asJSON}
		raw := *base
		if raw == "" {
			raw = std.getenv(deviceURLEnv)
		}
		if a.token == "" {
			a.token = std.getenv(deviceTokenEnv)
		}
		if raw == "" {
			return nil, usageErrorf(std, "device: no API URL: use --url or $%s", deviceURLEnv), false
		}
		if a.token == "" {
			return nil, usageErrorf(std, "device: no operator token: set $%s (or --token)", deviceTokenEnv), false
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
			return nil, usageErrorf(std, "device: --url must be an absolute https URL without query"), false
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			return nil, usageErrorf(std, "device: refusing plain http to %s: the token would travel in clear (use https)", u.Hostname()), false
		}
		a.base = strings.TrimSuffix(u.String(), "/")
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if *ca != "" {
			pem, err := readFile(*ca)
			if err != nil {
				return nil, usageErrorf(std, "device: reading --ca: %v", err), false
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usageErrorf(std, "device: --ca %s holds no PEM certificate", *ca), false
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		// Redirects are not followed: net/http would resend the token to
		// the same host over plain http, or replay a change elsewhere.
		a.client = &http.Client{Transport: tr, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		return a, exitOK, true
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// apiError is an error answer of the operator API.
type apiError struct {
	status      int
	code        string
	description string
}

func (e *apiError) Error() string {
	if e.description == "" {
		return fmt.Sprintf("%d %s", e.status, e.code)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.description)
}

// do sends a request to path (escaped: build it with seg) and decodes a
// JSON answer into out (when not nil). It returns the raw answer for
// --json and the status.
func (a *deviceAPI) do(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, int, error) {
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Code == "" {
			e.Code = http.StatusText(resp.StatusCode)
		}
		return raw, resp.StatusCode, &apiError{status: resp.StatusCode, code: e.Code, description: e.Description}
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, resp.StatusCode, fmt.Errorf("malformed answer: %v", err)
		}
	}
	return raw, resp.StatusCode, nil
}

// call runs a request like do. It returns ok=false with the exit code
// when the command is done: an error was reported, or --json printed the
// answer.
func (a *deviceAPI) call(ctx context.Context, method, path string, query url.Values, body, out any) (int, bool) {
	raw, _, err := a.do(ctx, method, path, query, body, out)
	if err != nil {
		return a.failed(err), false
	}
	if a.json {
		a.printJSON(raw)
		return exitOK, false
	}
	return exitOK, true
}

// failed reports an API or network error and returns the exit code.
func (a *deviceAPI) failed(err error) int {
	var e *apiError
	if errors.As(err, &e) && e.status == http.StatusBadRequest {
		fmt.Fprintf(a.std.err, "moat device: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(a.std.err, "moat device: %v\n", err)
	return exitRefused
}

// printJSON prints raw JSON indented.
func (a *deviceAPI) printJSON(raw []byte) {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		b.Reset()
		b.Write(raw)
	}
	fmt.Fprintln(a.std.out, strings.TrimSpace(b.String()))
}

// seg escapes an id as one path segment (a slash in it becomes %2F).
func seg(id string) string { return url.PathEscape(id) }

func runDeviceList(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device list", "moat device list [--user ID] [--name TEXT] [--status S] [--app ID] [--limit N] [--after ID] [flags]")
	api := deviceFlags(std, fs)
	user := fs.String("user", "", "devices on which this user was seen")
	name := fs.String("name", "", "devices whose display name contains this text (ignoring case)")
	status := fs.String("status", "", "devices in this status: active, lost, stolen, disabled")
	app := fs.String("app", "", "devices on which this app was seen")
	limit := fs.Int("limit", 0, "page size (server default 50, at most 500)")
	after := fs.String("after", "", "continue after this device id (the next page)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "device list takes no arguments")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	q := url.Values{}
	for k, v := range map[string]string{"user": *user, "name": *name, "status": *status, "app": *app, "after": *after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit > 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	var page device.Page
	if code, ok := a.call(ctx, http.MethodGet, "/devices", q, nil, &page); !ok {
		return code
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPLATFORM\tLAST SEEN\tUSERS\tNAME")
	for _, d := range page.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, d.Platform, d.LastSeen.Format(time.RFC3339), strings.Join(d.Users, ","), d.DisplayName)
	}
	_ = tw.Flush()
	if page.Next != "" {
		fmt.Fprintf(std.out, "more: --after %s\n", page.Next)
	}
	return exitOK
}

func runDeviceStatus(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device status", "moat device status DEVICE_ID [flags]")
	api := deviceFlags(std, fs)
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageErrorf(std, "device status takes one device id")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	var d device.Device
	if code, ok := a.call(ctx, http.MethodGet, "/devices/"+seg(fs.Arg(0)), nil, nil, &d); !ok {
		return code
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"device", d.ID}, {"status", string(d.Status)}, {"platform", d.Platform}, {"model", d.Model},
		{"os version", d.OSVersion}, {"name", d.DisplayName}, {"users", strings.Join(d.Users, ", ")},
		{"first seen", d.FirstSeen.Format(time.RFC3339)}, {"last seen", d.LastSeen.Format(time.RFC3339)},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	for _, app := range d.Apps {
		fmt.Fprintf(tw, "app:\t%s %s (%s, last seen %s)\n", app.AppID, app.AppVersion, app.Status, app.LastSeen.Format(time.RFC3339))
	}
	_ = tw.Flush()
	return exitOK
}

func runDeviceSetStatus(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device set-status", "moat device set-status DEVICE_ID STATUS --reason TEXT [--app ID] [flags]")
	api := deviceFlags(std, fs)
	reason := fs.String("reason", "", "why (required; recorded in the audit trail)")
	app := fs.String("app", "", "change this app's status on the device (active or disabled) instead of the device's")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageErrorf(std, "device set-status takes a device id and a status (active, lost, stolen, disabled)")
	}
	if *reason == "" {
		return usageErrorf(std, "device set-status: --reason is required")
	}
	if !device.Status(fs.Arg(1)).Valid() {
		return usageErrorf(std, "device set-status: unknown status %q (active, lost, stolen, disabled)", fs.Arg(1))
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	path := "/devices/" + seg(fs.Arg(0)) + "/status"
	if *app != "" {
		path = "/devices/" + seg(fs.Arg(0)) + "/apps/" + seg(*app) + "/status"
	}
	var e struct {
		device.AuditEntry
		Warning string `json:"warning"`
	}
	if code, ok := a.call(ctx, http.MethodPut, path, nil, map[string]string{"status": fs.Arg(1), "reason": *reason}, &e); !ok {
		return code
	}
	subject := e.DeviceID
	if e.AppID != "" {
		subject += " app " + e.AppID
	}
	fmt.Fprintf(std.out, "%s: %s -> %s (audit #%d by %s)\n", subject, e.From, e.To, e.Seq, e.Actor)
	if e.Warning != "" {
		fmt.Fprintf(std.err, "moat device: warning: %s\n", e.Warning)
	}
	return exitOK
}

func runDeviceUnregister(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device unregister", "moat device unregister DEVICE_ID --reason TEXT [flags]")
	api := deviceFlags(std, fs)
	reason := fs.String("reason", "", "why (required; recorded in the audit trail)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageErrorf(std, "device unregister takes one device id")
	}
	if *reason == "" {
		return usageErrorf(std, "device unregister: --reason is required")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	var e device.AuditEntry
	if code, ok := a.call(ctx, http.MethodPost, "/devices/"+seg(fs.Arg(0))+"/unregister", nil, map[string]string{"reason": *reason}, &e); !ok {
		return code
	}
	fmt.Fprintf(std.out, "%s: unregistered (audit #%d by %s)\n", e.DeviceID, e.Seq, e.Actor)
	return exitOK
}

func runDeviceAudit(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device audit", "moat device audit [DEVICE_ID] [--app ID] [--limit N] [--before SEQ] [flags]")
	api := deviceFlags(std, fs)
	app := fs.String("app", "", "entries about this app (app status and policy changes)")
	limit := fs.Int("limit", 0, "number of entries (server default 50, at most 500)")
	before := fs.Uint64("before", 0, "entries older than this sequence number (the next page)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageErrorf(std, "device audit takes at most one device id")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	q := url.Values{}
	if fs.NArg() == 1 {
		q.Set("device", fs.Arg(0))
	}
	if *app != "" {
		q.Set("app", *app)
	}
	if *limit > 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	if *before > 0 {
		q.Set("before", fmt.Sprint(*before))
	}
	var page struct {
		Entries []device.AuditEntry `json:"entries"`
		Next    uint64              `json:"next"`
	}
	if code, ok := a.call(ctx, http.MethodGet, "/audit", q, nil, &page); !ok {
		return code
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tSUBJECT\tCHANGE\tREASON")
	for _, e := range page.Entries {
		subject, change := e.DeviceID, ""
		switch e.Action {
		case device.AuditSetStatus:
			if e.AppID != "" {
				subject += " app " + e.AppID
			}
			change = string(e.From) + " -> " + string(e.To)
		case device.AuditSetPolicy, device.AuditDeletePolicy:
			subject = e.AppID + "/" + e.Platform
			if e.Policy != nil && e.Action == device.AuditSetPolicy {
				change = describePolicy(*e.Policy)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Actor, e.Action, subject, change, e.Reason)
	}
	_ = tw.Flush()
	if page.Next != 0 {
		fmt.Fprintf(std.out, "more: --before %d\n", page.Next)
	}
	return exitOK
}

func describePolicy(p device.Policy) string {
	var parts []string
	action := p.Action
	if action == "" {
		action = device.Block
	}
	if p.MinVersion != "" {
		parts = append(parts, string(action)+" below "+p.MinVersion)
	}
	if p.MinVersionCode > 0 {
		parts = append(parts, fmt.Sprintf("%s below code %d", action, p.MinVersionCode))
	}
	if len(p.BlockedVersions) > 0 {
		parts = append(parts, "block "+strings.Join(p.BlockedVersions, ","))
	}
	for _, c := range p.BlockedVersionCodes {
		parts = append(parts, fmt.Sprintf("block code %d", c))
	}
	if len(parts) == 0 {
		return "no rules"
	}
	return strings.Join(parts, "; ")
}

var devicePolicySubcommands = []subcommand{
	{name: "list", summary: "list every policy", run: runDevicePolicyList},
	{name: "get", summary: "show the policy of APP on PLATFORM", run: runDevicePolicyGet},
	{name: "set", summary: "change the policy of APP on PLATFORM (only the given flags change)", run: runDevicePolicySet},
	{name: "delete", summary: "remove the policy of APP on PLATFORM", run: runDevicePolicyDelete},
}

func runDevicePolicy(ctx context.Context, std stdio, args []string) int {
	return dispatch(ctx, std, "device policy", devicePolicySubcommands, args)
}

func runDevicePolicyList(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device policy list", "moat device policy list [flags]")
	api := deviceFlags(std, fs)
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageErrorf(std, "device policy list takes no arguments")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	var list struct {
		Policies []device.Policy `json:"policies"`
	}
	if code, ok := a.call(ctx, http.MethodGet, "/policies", nil, nil, &list); !ok {
		return code
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tPLATFORM\tRULES\tUPDATED\tBY")
	for _, p := range list.Policies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.AppID, p.Platform, describePolicy(p), p.UpdatedAt.Format(time.RFC3339), p.UpdatedBy)
	}
	_ = tw.Flush()
	return exitOK
}

func policyPath(app, platform string) string { return "/policies/" + seg(app) + "/" + seg(platform) }

func runDevicePolicyGet(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device policy get", "moat device policy get APP PLATFORM [flags]")
	api := deviceFlags(std, fs)
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageErrorf(std, "device policy get takes an app id and a platform")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	var p device.Policy
	if code, ok := a.call(ctx, http.MethodGet, policyPath(fs.Arg(0), fs.Arg(1)), nil, nil, &p); !ok {
		return code
	}
	printPolicy(std.out, p)
	return exitOK
}

func printPolicy(w io.Writer, p device.Policy) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	action := p.Action
	if action == "" {
		action = device.Block
	}
	fmt.Fprintf(tw, "app:\t%s\nplatform:\t%s\nrules:\t%s\naction:\t%s\n", p.AppID, p.Platform, describePolicy(p), action)
	if p.Message != "" {
		fmt.Fprintf(tw, "message:\t%s\n", p.Message)
	}
	tags := make([]string, 0, len(p.Translations))
	for t := range p.Translations {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	for _, t := range tags {
		fmt.Fprintf(tw, "message [%s]:\t%s\n", t, p.Translations[t])
	}
	if p.DownloadURL != "" {
		fmt.Fprintf(tw, "download url:\t%s\n", p.DownloadURL)
	}
	fmt.Fprintf(tw, "updated:\t%s by %s\n", p.UpdatedAt.Format(time.RFC3339), p.UpdatedBy)
	_ = tw.Flush()
}

func runDevicePolicySet(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device policy set", "moat device policy set APP PLATFORM [--min V] [--action notify|block] [--block V]... --reason TEXT [flags]")
	api := deviceFlags(std, fs)
	minVersion := fs.String("min", "", `minimum version ("" removes the minimum)`)
	action := fs.String("action", "", "what happens below the minimum: block or notify")
	var block, unblock, translations multiFlag
	fs.Var(&block, "block", "add a version that is always refused (repeatable)")
	fs.Var(&unblock, "unblock", "remove a version from the blocked list (repeatable)")
	minCode := fs.Int64("min-code", 0, "minimum attested version code (Play Integrity versionCode; 0 removes it)")
	message := fs.String("message", "", "message for users of refused or notified versions")
	fs.Var(&translations, "translation", `a translated message, TAG=TEXT (for example fr="Mettez à jour"; TAG= removes one; repeatable)`)
	download := fs.String("download-url", "", "where users get an allowed version (https, itms-apps or market URL)")
	reason := fs.String("reason", "", "why (required; recorded in the audit trail)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageErrorf(std, "device policy set takes an app id and a platform")
	}
	if *reason == "" {
		return usageErrorf(std, "device policy set: --reason is required")
	}
	if *action != "" && *action != string(device.Block) && *action != string(device.Notify) {
		return usageErrorf(std, "device policy set: --action must be block or notify")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	a, code, ok := api()
	if !ok {
		return code
	}
	path := policyPath(fs.Arg(0), fs.Arg(1))

	// Start from the current policy, so only the given flags change it.
	var p device.Policy
	if _, status, err := a.do(ctx, http.MethodGet, path, nil, nil, &p); err != nil && status != http.StatusNotFound {
		return a.failed(err)
	}
	if set["min"] {
		p.MinVersion = *minVersion
	}
	if set["action"] {
		p.Action = device.Action(*action)
	}
	if set["min-code"] {
		p.MinVersionCode = *minCode
	}
	if set["message"] {
		p.Message = *message
	}
	if set["download-url"] {
		p.DownloadURL = *download
	}
	for _, v := range block {
		if !slices.Contains(p.BlockedVersions, v) {
			p.BlockedVersions = append(p.BlockedVersions, v)
		}
	}
	p.BlockedVersions = slices.DeleteFunc(p.BlockedVersions, func(v string) bool { return slices.Contains(unblock, v) })
	for _, t := range translations {
		tag, text, ok := strings.Cut(t, "=")
		if !ok || tag == "" {
			return usageErrorf(std, "device policy set: --translation wants TAG=TEXT, not %q", t)
		}
		if p.Translations == nil {
			p.Translations = map[string]string{}
		}
		if text == "" {
			delete(p.Translations, tag)
		} else {
			p.Translations[tag] = text
		}
	}
	p.UpdatedAt, p.UpdatedBy = time.Time{}, ""
	var e struct {
		device.AuditEntry
		Warning string `json:"warning"`
	}
	if code, ok := a.call(ctx, http.MethodPut, path, nil, device.PolicyRequest{Policy: p, Reason: *reason}, &e); !ok {
		return code
	}
	fmt.Fprintf(std.out, "policy set (audit #%d by %s)\n", e.Seq, e.Actor)
	if e.Policy != nil {
		printPolicy(std.out, *e.Policy)
	}
	if e.Warning != "" {
		fmt.Fprintf(std.err, "moat device: warning: %s\n", e.Warning)
	}
	return exitOK
}

func runDevicePolicyDelete(ctx context.Context, std stdio, args []string) int {
	fs := newFlags(std, "device policy delete", "moat device policy delete APP PLATFORM --reason TEXT [flags]")
	api := deviceFlags(std, fs)
	reason := fs.String("reason", "", "why (required; recorded in the audit trail)")
	if code, ok := parseFlags(std, fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageErrorf(std, "device policy delete takes an app id and a platform")
	}
	if *reason == "" {
		return usageErrorf(std, "device policy delete: --reason is required")
	}
	a, code, ok := api()
	if !ok {
		return code
	}
	raw, status, err := a.do(ctx, http.MethodDelete, policyPath(fs.Arg(0), fs.Arg(1)), url.Values{"reason": {*reason}}, nil, nil)
	if err != nil {
		return a.failed(err)
	}
	switch {
	case status == http.StatusNoContent:
		fmt.Fprintln(std.out, "no policy to delete")
	case a.json:
		a.printJSON(raw)
	default:
		fmt.Fprintln(std.out, "policy deleted")
	}
	return exitOK
}
