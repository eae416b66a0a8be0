package stepup

import (
	"context"
	"sync"
)

// Outbox is a [Sender] that delivers nothing: it keeps the last messages in
// memory, where tests and development servers read the codes (the travel
// example takes its SMS codes from one). It is a test and development
// helper: a production server needs a real SMS or mail gateway. It is safe
// for concurrent use and keeps at most the 1000 newest messages.
type Outbox struct {
	mu   sync.Mutex
	msgs []Message
	// OnSend, when set before use, is called with each message (for
	// example to print it in a development server's log).
	OnSend func(Message)
}

var _ Sender = (*Outbox)(nil)

const outboxSize = 1000

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox { return &Outbox{} }

// Send implements [Sender].
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	o.msgs = append(o.msgs, m)
	if len(o.msgs) > outboxSize {
		o.msgs = append([]Message(nil), o.msgs[len(o.msgs)-outboxSize:]...)
	}
	f := o.OnSend
	o.mu.Unlock()
	if f != nil {
		f(m)
	}
	return nil
}

// Last returns the newest message sent to the phone number or address to.
func (o *Outbox) Last(to string) (Message, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.msgs) - 1; i >= 0; i-- {
		if o.msgs[i].To == to {
			return o.msgs[i], true
		}
	}
	return Message{}, false
}

// LastCode returns the code of the newest message sent to to, or "".
func (o *Outbox) LastCode(to string) string {
	m, _ := o.Last(to)
	return m.Code
}

// Messages returns a copy of the kept messages, oldest first.
func (o *Outbox) Messages() []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Message(nil), o.msgs...)
}
