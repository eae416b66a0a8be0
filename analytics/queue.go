package analytics

import (
	"math/bits"
	"sync/atomic"
)

// queue is a bounded multi-producer, single-consumer ring of events
// (Dmitry Vyukov's bounded queue design). A producer claims a slot with
// one compare-and-swap and publishes it with one atomic store; it never
// waits: when the ring is full, push fails at once. Only one goroutine pops
// at a time (the recorder's drain, under its mutex).
type queue struct {
	slots []slot
	mask  uint64
	tail  atomic.Uint64 // next position to claim
	head  atomic.Uint64 // next position to pop; written by the consumer only
}

type slot struct {
	// seq is the position the slot is ready for: pos when free for the
	// producer of pos, pos+1 when it holds that producer's event.
	seq atomic.Uint64
	it  item
}

// newQueue returns a queue of at least size slots (rounded up to a power
// of two).
func newQueue(size int) *queue {
	n := 1 << bits.Len(uint(size-1))
	q := &queue{slots: make([]slot, n), mask: uint64(n - 1)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// claim reserves the next slot for the caller to fill with its event and
// then publish, or reports false at once when the queue is full.
func (q *queue) claim() (*slot, uint64, bool) {
	pos := q.tail.Load()
	for {
		s := &q.slots[pos&q.mask]
		switch d := int64(s.seq.Load() - pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				return s, pos, true
			}
			pos = q.tail.Load()
		case d < 0:
			return nil, 0, false // the slot still holds an event a lap behind: full
		default:
			pos = q.tail.Load() // another producer took pos
		}
	}
}

// publish hands a claimed and filled slot to the consumer.
func (q *queue) publish(s *slot, pos uint64) { s.seq.Store(pos + 1) }

// push copies *it into the queue, or reports false when it is full.
func (q *queue) push(it *item) bool {
	s, pos, ok := q.claim()
	if ok {
		s.it = *it
		q.publish(s, pos)
	}
	return ok
}

// pop moves the oldest event into *it, or reports false when there is
// none ready. Callers must not pop concurrently.
func (q *queue) pop(it *item) bool {
	pos := q.head.Load()
	s := &q.slots[pos&q.mask]
	if s.seq.Load() != pos+1 {
		return false
	}
	*it = s.it
	s.it = item{} // let the raw strings go
	s.seq.Store(pos + q.mask + 1)
	q.head.Store(pos + 1)
	return true
}

// len returns about how many events wait.
func (q *queue) len() int {
	t, h := q.tail.Load(), q.head.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}

// cap returns the number of slots.
func (q *queue) cap() int { return len(q.slots) }
