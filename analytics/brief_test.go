package analytics

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewBrief(t *testing.T) {
	t.Parallel()
	calls := &Summary{
		Window: Window{GroupBy: []string{"channel"}, OtherGroups: 2, Recorder: Stats{Dropped: 3}},
		Total:  CallTotals{Calls: 100},
		Groups: []CallGroup{
			{Key: map[string]string{"channel": "phone"}, CallTotals: CallTotals{Calls: 70}},
			{Key: map[string]string{"channel": "watch"}, CallTotals: CallTotals{Calls: 20}},
		},
	}
	sec := &SecurityReport{Refusals: 4, Kinds: map[string]int64{
		"challenge_issued": 9, "challenge_answered": 7, "challenge_failed": 2,
		"stepup_demanded": 1, "stepup_completed": 1, "device_refused": 1, "version_refused": 3,
	}}
	require.Equal(t, "calls: 100 (phone 70, watch 20, other 10)\n"+
		"challenges: 9 issued, 7 answered, 2 failed; step-ups: 1 demanded, 1 completed\n"+
		"refusals: 4 (version_refused 3, device_refused 1)\n"+
		"recorder: 3 events dropped, 0 folded into (other)\n", NewBrief(calls, sec).String())

	calls.GroupBy = []string{"app"}
	b := NewBrief(calls, nil)
	require.Empty(t, b.ByChannel)
	require.Equal(t, "calls: 100\nchallenges: 0 issued, 0 answered, 0 failed; step-ups: 0 demanded, 0 completed\nrefusals: 0\nrecorder: 3 events dropped, 0 folded into (other)\n", b.String())
}
