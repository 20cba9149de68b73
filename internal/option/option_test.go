package option_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/internal/option"
)

func TestSet(t *testing.T) {
	n := 7
	require.NoError(t, option.Set(&n, "WithQueue", 0, 1024))
	require.Equal(t, 1024, n, "zero is the default")
	require.NoError(t, option.Set(&n, "WithQueue", 3, 1024))
	require.Equal(t, 3, n)
	require.EqualError(t, option.Set(&n, "WithQueue", -1, 1024), "WithQueue: negative count -1")
	require.Equal(t, 3, n, "a negative value changes nothing")

	d := time.Second
	require.EqualError(t, option.Set(&d, "WithTimeout", -time.Second, time.Minute), "WithTimeout: negative duration -1s")
	require.NoError(t, option.Set(&d, "WithTimeout", 0, time.Minute))
	require.Equal(t, time.Minute, d)
	require.NoError(t, option.Check("WithTTL", time.Duration(0)))
}
