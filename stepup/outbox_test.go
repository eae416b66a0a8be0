package stepup_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/moatsec/moat/stepup"
)

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := stepup.NewOutbox()
	var seen int
	o.OnSend = func(stepup.Message) { seen++ }
	_, ok := o.Last("+1")
	require.False(t, ok)
	require.Empty(t, o.LastCode("+1"))
	for i := range 1005 {
		require.NoError(t, o.Send(ctx, stepup.Message{To: fmt.Sprint("+", i%3), Code: fmt.Sprint(i)}))
	}
	require.Equal(t, 1005, seen)
	require.Len(t, o.Messages(), 1000, "bounded")
	require.Equal(t, "1004", o.LastCode("+2"))
	require.Equal(t, "1003", o.LastCode("+1"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, o.Send(cancelled, stepup.Message{}))
}
