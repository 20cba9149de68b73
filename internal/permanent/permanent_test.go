package permanent_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/permanent"
)

func TestMark(t *testing.T) {
	base := errors.New("refused")
	require.Nil(t, permanent.Mark(nil))
	p := permanent.Mark(base)
	require.True(t, permanent.Is(p))
	require.True(t, permanent.Is(fmt.Errorf("write: %w", p)), "through wrapping")
	require.ErrorIs(t, p, base)
	require.Equal(t, "refused", p.Error())
	require.False(t, permanent.Is(base))
	require.False(t, permanent.Is(nil))
	require.True(t, permanent.Is(errors.Join(p, permanent.Mark(errors.New("x")))))
	require.False(t, permanent.Is(errors.Join(p, base)), "one transient error makes the whole transient")
	require.False(t, permanent.Is(errors.Join()), "an empty join is not permanent")
}
