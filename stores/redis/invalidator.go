package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/moatsec/moat/device"
)

// Defaults of [InvalidatorConfig].
const (
	// DefaultPingInterval is how long a silent subscription waits before
	// it pings Redis; a subscription that stays silent for two intervals
	// is dropped and made again.
	DefaultPingInterval = 3 * time.Second
	// ChannelSuffix follows the prefix in the name of the pub/sub channel
	// that carries invalidations: "moat:device:invalidations" by default.
	ChannelSuffix = "device:invalidations"
)

// confirmTimeout bounds the wait for Redis to confirm a subscription in
// [NewInvalidator] when the context has no earlier deadline.
const confirmTimeout = 10 * time.Second

// InvalidatorConfig configures [NewInvalidator]. The zero value is ready to
// use.
type InvalidatorConfig struct {
	// Prefix starts the name of the pub/sub channel: the channel is
	// Prefix + ChannelSuffix. Instances that must see each other's
	// changes use the same prefix (usually the one of their Store).
	// Empty means DefaultPrefix ("moat:").
	Prefix string

	// PingInterval is how long the subscription may stay silent before
	// the Invalidator pings Redis; with no answer within one more
	// interval, it drops the connection, subscribes again and, like after
	// any reconnection, delivers Invalidation{All: true}. Zero means
	// DefaultPingInterval; it is never less than 10ms.
	PingInterval time.Duration

	// Logger receives lost and restored subscriptions and messages that
	// do not decode. Nil means slog.Default().
	Logger *slog.Logger
}

// Invalidator is the Redis [device.Invalidator]: Publish sends each
// invalidation on a pub/sub channel that every instance subscribes to, so
// a device blocked through one instance is refused by all of them at once.
//
// It holds one subscription, made and confirmed by [NewInvalidator], and
// fans what arrives out to the functions given to Subscribe. Whenever the
// subscription is made again after a lost connection it delivers
// Invalidation{All: true}, since invalidations published meanwhile are
// lost (Redis pub/sub does not queue for absent subscribers).
type Invalidator struct {
	client  goredis.UniversalClient
	channel string
	origin  string // tags this Invalidator's messages, so it skips its own
	ping    time.Duration
	log     *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the receive loop ends

	mu     sync.Mutex // guards ps and closed
	ps     *goredis.PubSub
	closed bool

	subsMu sync.RWMutex
	nextID uint64
	subs   map[uint64]*subscriber
}

type subscriber struct {
	f         func(device.Invalidation)
	cancelled atomic.Bool
}

var _ device.Invalidator = (*Invalidator)(nil)

// message is what travels on the channel: the invalidation's own JSON
// fields, plus the publishing Invalidator's origin tag. A message without
// origin (published by hand, say with redis-cli) is delivered too.
type message struct {
	device.Invalidation
	Origin string `json:"origin,omitempty"`
}

// NewInvalidator subscribes to the invalidation channel and returns once
// Redis has confirmed the subscription (or ctx ends, or 10 seconds pass),
// so that an invalidation published after it returns is not missed. It
// fails when Redis cannot be reached. Call Close to unsubscribe; the
// caller keeps ownership of client and closes it after the Invalidator.
func NewInvalidator(ctx context.Context, client goredis.UniversalClient, cfg InvalidatorConfig) (*Invalidator, error) {
	if client == nil {
		return nil, errors.New("moat/redis: a Redis client is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	ping := cfg.PingInterval
	if ping == 0 {
		ping = DefaultPingInterval
	}
	ping = max(ping, 10*time.Millisecond)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var tag [16]byte
	_, _ = rand.Read(tag[:]) // crypto/rand.Read never fails
	i := &Invalidator{
		client: client, channel: prefix + ChannelSuffix, origin: hex.EncodeToString(tag[:]),
		ping: ping, log: log, done: make(chan struct{}), subs: map[uint64]*subscriber{},
	}

	ps := client.Subscribe(ctx, i.channel)
	if err := i.confirm(ctx, ps); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("moat/redis: subscribing to invalidations: %w", err)
	}
	i.ps = ps
	i.ctx, i.cancel = context.WithCancel(context.Background())
	go i.loop()
	return i, nil
}

// confirm waits for the confirmation of the subscription to i.channel.
func (i *Invalidator) confirm(ctx context.Context, ps *goredis.PubSub) error {
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if sub, ok := msg.(*goredis.Subscription); ok && sub.Kind == "subscribe" && sub.Channel == i.channel {
			return nil
		}
	}
}

// Publish delivers inv to this Invalidator's subscribers before it
// returns, then publishes it to the other instances. An error (Redis
// unreachable, ctx done, ErrClosed) means other instances may not have
// received it.
func (i *Invalidator) Publish(ctx context.Context, inv device.Invalidation) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("moat/redis: publishing an invalidation: %w", err)
	}
	i.mu.Lock()
	closed := i.closed
	i.mu.Unlock()
	if closed {
		return ErrClosed
	}
	i.deliver(inv)
	payload, err := json.Marshal(message{Invalidation: inv, Origin: i.origin})
	if err != nil {
		return fmt.Errorf("moat/redis: publishing an invalidation: %w", err)
	}
	if err := i.client.Publish(ctx, i.channel, payload).Err(); err != nil {
		return fmt.Errorf("moat/redis: publishing an invalidation: %w", err)
	}
	return nil
}

// Subscribe calls f for every invalidation published after it returns, by
// any instance on the same channel, and for Invalidation{All: true} after
// each reconnection, until cancel is called (a call already under way may
// finish after cancel returns). f runs on the Invalidator's receiving
// goroutine or on the goroutine of a local Publish, so it may be called
// from several goroutines at once; it must not block.
// After Close, Subscribe does nothing.
func (i *Invalidator) Subscribe(f func(device.Invalidation)) (cancel func()) {
	if f == nil {
		return func() {}
	}
	i.mu.Lock()
	closed := i.closed
	i.mu.Unlock()
	if closed {
		return func() {}
	}
	s := &subscriber{f: f}
	i.subsMu.Lock()
	id := i.nextID
	i.nextID++
	i.subs[id] = s
	i.subsMu.Unlock()
	return func() {
		s.cancelled.Store(true)
		i.subsMu.Lock()
		delete(i.subs, id)
		i.subsMu.Unlock()
	}
}

// Close unsubscribes and stops delivering. It waits for the receiving
// goroutine to end and is safe to call more than once.
func (i *Invalidator) Close() error {
	i.cancel()
	i.mu.Lock()
	if !i.closed {
		i.closed = true
		_ = i.ps.Close()
	}
	i.mu.Unlock()
	<-i.done
	i.subsMu.Lock()
	for _, s := range i.subs {
		s.cancelled.Store(true)
	}
	clear(i.subs)
	i.subsMu.Unlock()
	return nil
}

// deliver calls every live subscriber with inv.
func (i *Invalidator) deliver(inv device.Invalidation) {
	i.subsMu.RLock()
	subs := make([]*subscriber, 0, len(i.subs))
	for _, s := range i.subs {
		subs = append(subs, s)
	}
	i.subsMu.RUnlock()
	for _, s := range subs {
		if !s.cancelled.Load() {
			s.f(inv)
		}
	}
}

// current returns the PubSub in use, or nil after Close.
func (i *Invalidator) current() *goredis.PubSub {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil
	}
	return i.ps
}

// resubscribe replaces a PubSub whose connection stopped answering. The
// confirmation of the new subscription arrives through the loop, which
// then delivers Invalidation{All: true}.
func (i *Invalidator) resubscribe(old *goredis.PubSub) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.ps != old {
		return
	}
	_ = old.Close()
	i.ps = i.client.Subscribe(i.ctx, i.channel)
}

// loop receives until Close. go-redis reconnects and subscribes again by
// itself after a connection error; the loop adds the health check (a
// silent connection is pinged, and replaced if the ping goes unanswered)
// and turns every confirmation after the first into Invalidation{All:
// true}.
func (i *Invalidator) loop() {
	defer close(i.done)
	var (
		pinged  bool // a ping is outstanding
		lost    bool // the connection failed and no confirmation came since
		backoff time.Duration
	)
	for {
		ps := i.current()
		if ps == nil {
			return
		}
		msg, err := ps.ReceiveTimeout(i.ctx, i.ping)
		if i.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !pinged:
				pinged = true
				if err := ps.Ping(i.ctx); err == nil {
					continue
				}
				fallthrough
			case errors.As(err, &ne) && ne.Timeout():
				if !lost {
					i.log.Warn("moat/redis: invalidation subscription stopped answering; subscribing again", "channel", i.channel)
				}
				lost, pinged = true, false
				i.resubscribe(ps)
				continue
			}
			if !lost {
				i.log.Warn("moat/redis: invalidation subscription lost; reconnecting", "channel", i.channel, "error", err)
			}
			lost, pinged = true, false
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select {
			case <-time.After(backoff):
			case <-i.ctx.Done():
				return
			}
			continue
		}
		pinged, backoff = false, 0
		switch msg := msg.(type) {
		case *goredis.Subscription:
			if msg.Kind == "subscribe" && msg.Channel == i.channel {
				// Every confirmation after the one NewInvalidator waited
				// for follows a reconnection: messages may have been lost.
				i.log.Info("moat/redis: invalidation subscription restored", "channel", i.channel)
				lost = false
				i.deliver(device.Invalidation{All: true})
			}
		case *goredis.Message:
			if msg.Channel != i.channel {
				continue
			}
			var m message
			if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
				// Fail safe: a message that does not decode may have
				// named anything.
				i.log.Warn("moat/redis: undecodable invalidation; invalidating everything", "channel", i.channel)
				i.deliver(device.Invalidation{All: true})
				continue
			}
			if m.Origin == i.origin {
				continue // delivered by Publish already
			}
			i.deliver(m.Invalidation)
		}
	}
}
