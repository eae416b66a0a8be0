package pinning

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReportSenderConfig configures a [ReportSender].
type ReportSenderConfig struct {
	// URL is where reports are POSTed as JSON. Required; https, or http to
	// a loopback address.
	URL string
	// Client sends the reports. Nil means a client with a 10-second
	// timeout over http.DefaultTransport. Do not use a client pinned by
	// the same set if it covers URL's host: a violation there would block
	// its own report.
	Client *http.Client
	// Burst is how many reports may be sent in a row before the rate
	// limit applies. Zero means 5.
	Burst int
	// Interval is how long it takes, after a burst, for one more report
	// to be allowed. Zero means one minute.
	Interval time.Duration
	// DedupWindow is how long a report identical to one already sent (same
	// host, port, mode and chains) is suppressed. Zero means one hour.
	DedupWindow time.Duration
	// Now returns the current time, for the rate limit and the dedup
	// window. Nil means time.Now.
	Now func() time.Time
	// Logger receives delivery failures. Nil means slog.Default().
	Logger *slog.Logger
}

// maxDedupEntries bounds the sender's memory of sent reports.
const maxDedupEntries = 1024

// sendTimeout bounds one report delivery with the default client.
const sendTimeout = 10 * time.Second

// A ReportSender posts violation reports to a report URI in the
// background. [ReportSender.Report] never blocks: it drops a report that
// duplicates one sent within the dedup window, that the rate limit (a
// token bucket of Burst, refilled one per Interval) does not allow, or
// that finds the queue full. Under a flood of violations at most
// Burst + elapsed/Interval reports go out. Call [ReportSender.Close] to
// stop it.
type ReportSender struct {
	url      string
	client   *http.Client
	burst    float64
	interval time.Duration
	window   time.Duration
	now      func() time.Time
	log      *slog.Logger

	queue  chan Report
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	closed bool
	tokens float64
	last   time.Time
	seen   map[string]time.Time
	stats  ReportStats
}

// ReportStats counts what a [ReportSender] did with the reports it got.
type ReportStats struct {
	Sent         int // delivered with a 2xx answer
	Failed       int // delivery failed or answered otherwise
	Deduplicated int // dropped as a duplicate within the window
	Dropped      int // dropped by the rate limit, a full queue, or after Close
}

// NewReportSender starts a sender for cfg.
func NewReportSender(cfg ReportSenderConfig) (*ReportSender, error) {
	if err := checkURL("report", cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Burst < 0 || cfg.Interval < 0 || cfg.DedupWindow < 0 {
		return nil, fmt.Errorf("moat/pinning: report sender limits must not be negative")
	}
	s := &ReportSender{
		url: cfg.URL, client: cfg.Client, burst: float64(cfg.Burst), interval: cfg.Interval,
		window: cfg.DedupWindow, now: cfg.Now, log: cfg.Logger,
		done: make(chan struct{}), seen: make(map[string]time.Time),
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: sendTimeout}
	}
	if s.burst == 0 {
		s.burst = 5
	}
	if s.interval == 0 {
		s.interval = time.Minute
	}
	if s.window == 0 {
		s.window = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.tokens, s.last = s.burst, s.now()
	s.queue = make(chan Report, int(s.burst))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// checkURL accepts https URLs, and http ones to a loopback host. what
// names the URL in errors.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("moat/pinning: %s URL %q is not an absolute URL", what, raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if a, err := netip.ParseAddr(h); (err == nil && a.IsLoopback()) || strings.EqualFold(h, "localhost") {
			return nil
		}
	}
	return fmt.Errorf("moat/pinning: %s URL must be https (or http to a loopback address), have %q", what, u.Scheme)
}

// Report queues r for sending, or drops it (see [ReportSender]). It never
// blocks on I/O and is safe for concurrent use.
func (s *ReportSender) Report(r Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.stats.Dropped++
		return
	}
	now := s.now()
	key := dedupKey(r)
	if t, ok := s.seen[key]; ok && now.Sub(t) < s.window {
		s.stats.Deduplicated++
		return
	}
	s.tokens = min(s.burst, s.tokens+float64(now.Sub(s.last))/float64(s.interval))
	s.last = now
	if s.tokens < 1 || !s.remember(key, now) {
		s.stats.Dropped++
		return
	}
	select {
	case s.queue <- r:
		s.tokens--
	default:
		delete(s.seen, key)
		s.stats.Dropped++
	}
}

// remember records key as sent at now, forgetting expired entries when
// the memory is full. It reports false when there is still no room.
func (s *ReportSender) remember(key string, now time.Time) bool {
	if len(s.seen) >= maxDedupEntries {
		for k, t := range s.seen {
			if now.Sub(t) >= s.window {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxDedupEntries {
			return false
		}
	}
	s.seen[key] = now
	return true
}

// dedupKey identifies reports that say the same thing.
func dedupKey(r Report) string {
	var b strings.Builder
	b.WriteString(r.Host)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(r.Port))
	b.WriteByte(' ')
	b.WriteString(r.Mode.String())
	for _, list := range [][]Pin{r.ServedChain, r.VerifiedChain} {
		b.WriteByte(' ')
		for _, p := range list {
			b.Write(p[:])
		}
	}
	return b.String()
}

// Stats returns what the sender has done so far.
func (s *ReportSender) Stats() ReportStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close stops the sender: a delivery in progress is cancelled, queued
// reports are dropped, and later reports are dropped. It waits for the
// background goroutine to end and is safe to call more than once.
func (s *ReportSender) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.cancel()
	}
	<-s.done
	return nil
}

func (s *ReportSender) run() {
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case r := <-s.queue:
			err := s.send(r)
			s.mu.Lock()
			if err != nil {
				s.stats.Failed++
			} else {
				s.stats.Sent++
			}
			s.mu.Unlock()
			if err != nil && s.ctx.Err() == nil {
				s.log.Warn("moat/pinning: sending a pin violation report failed", "host", r.Host, "error", err)
			}
		}
	}
}

func (s *ReportSender) send(r Report) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("report URI answered %s", resp.Status)
	}
	return nil
}
