package analytics

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Brief is a short account of calls and security outcomes: what a
// transcript, a log line or a chat message can carry. Make it from query
// results with [NewBrief] (also from the JSON the query API returns), or
// from the recorder with [Recorder.Brief].
type Brief struct {
	Since, Until time.Time
	// Calls counts every call; ByChannel splits them, largest first.
	Calls     int64
	ByChannel []Count
	// Challenges counts challenges issued, answered and failed.
	ChallengesIssued, ChallengesAnswered, ChallengesFailed int64
	// StepUps counts step-ups demanded and completed.
	StepUpsDemanded, StepUpsCompleted int64
	// Refusals counts the outcomes that refused a client; ByKind splits
	// them, largest first.
	Refusals          int64
	RefusalsByKind    []Count
	Dropped, Overflow uint64
}

// Count is a label and how many times it was counted.
type Count struct {
	Label string
	N     int64
}

// NewBrief sums up a summary of calls and a security report. The summary's
// groups give the split by channel when it was grouped by channel alone;
// otherwise ByChannel is empty.
func NewBrief(calls *Summary, sec *SecurityReport) *Brief {
	b := &Brief{Since: calls.Since, Until: calls.Until, Calls: calls.Total.Calls,
		Dropped: calls.Recorder.Dropped, Overflow: calls.Recorder.Overflow}
	if len(calls.GroupBy) == 1 && calls.GroupBy[0] == "channel" {
		for _, g := range calls.Groups {
			b.ByChannel = append(b.ByChannel, Count{g.Key["channel"], g.Calls})
		}
		if calls.OtherGroups > 0 {
			var shown int64
			for _, c := range b.ByChannel {
				shown += c.N
			}
			b.ByChannel = append(b.ByChannel, Count{"other", calls.Total.Calls - shown})
		}
	}
	if sec != nil {
		k := sec.Kinds
		b.ChallengesIssued = k[ChallengeIssued.String()]
		b.ChallengesAnswered = k[ChallengeAnswered.String()]
		b.ChallengesFailed = k[ChallengeFailed.String()]
		b.StepUpsDemanded = k[StepUpDemanded.String()]
		b.StepUpsCompleted = k[StepUpCompleted.String()]
		b.Refusals = sec.Refusals
		for _, kind := range Kinds() {
			if n := k[kind.String()]; kind.Refusal() && n > 0 {
				b.RefusalsByKind = append(b.RefusalsByKind, Count{kind.String(), n})
			}
		}
		sortCounts(b.RefusalsByKind)
	}
	return b
}

func sortCounts(cs []Count) {
	slices.SortStableFunc(cs, func(a, b Count) int { return cmp.Compare(b.N, a.N) })
}

// Brief sums up calls and security outcomes between since and until (zero
// values as in [Query]) at hour resolution, so the range is widened
// to whole hours. It does not flush the queue: call [Recorder.Flush] first
// to include the latest events.
func (r *Recorder) Brief(since, until time.Time) (*Brief, error) {
	calls, err := r.Summary(Query{Since: since, Until: until, Resolution: Hour, GroupBy: []string{"channel"}})
	if err != nil {
		return nil, err
	}
	sec, err := r.SecurityReport(Query{Since: since, Until: until, Resolution: Hour})
	if err != nil {
		return nil, err
	}
	return NewBrief(calls, sec), nil
}

// String renders the brief in three lines:
//
//	calls: 42 (phone 30, watch 12)
//	challenges: 7 issued, 6 answered, 1 failed; step-ups: 2 demanded, 2 completed
//	refusals: 3 (device_refused 2, version_refused 1)
//
// and a fourth when events were dropped or folded into "(other)".
func (b *Brief) String() string {
	var s strings.Builder
	_, _ = b.WriteTo(&s)
	return s.String()
}

// WriteTo writes [Brief.String] to w.
func (b *Brief) WriteTo(w io.Writer) (int64, error) {
	var s strings.Builder
	fmt.Fprintf(&s, "calls: %d%s\n", b.Calls, counts(b.ByChannel))
	fmt.Fprintf(&s, "challenges: %d issued, %d answered, %d failed; step-ups: %d demanded, %d completed\n",
		b.ChallengesIssued, b.ChallengesAnswered, b.ChallengesFailed, b.StepUpsDemanded, b.StepUpsCompleted)
	fmt.Fprintf(&s, "refusals: %d%s\n", b.Refusals, counts(b.RefusalsByKind))
	if b.Dropped > 0 || b.Overflow > 0 {
		fmt.Fprintf(&s, "recorder: %d events dropped, %d folded into (other)\n", b.Dropped, b.Overflow)
	}
	n, err := io.WriteString(w, s.String())
	return int64(n), err
}

func counts(cs []Count) string {
	if len(cs) == 0 {
		return ""
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.Label, c.N)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
