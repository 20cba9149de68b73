// Package option holds the one check behind meterkit's option convention
// (see the root package's doc, Options): zero means the package default for
// counts and durations, and a negative one is an error naming the option.
package option

import (
	"fmt"
	"time"
)

// Check returns an error naming option when v, a count or a duration, is
// negative: "WithQueue: negative count -1", "WithTimeout: negative
// duration -1s". The caller adds its package prefix.
func Check[T ~int | ~int64](option string, v T) error {
	if v >= 0 {
		return nil
	}
	if d, ok := any(v).(time.Duration); ok {
		return fmt.Errorf("%s: negative duration %v", option, d)
	}
	return fmt.Errorf("%s: negative count %d", option, v)
}

// Set checks v as Check does and stores it in *dst, or def when v is zero.
// *dst is left alone when v is negative.
func Set[T ~int | ~int64](dst *T, option string, v, def T) error {
	if err := Check(option, v); err != nil {
		return err
	}
	if v == 0 {
		v = def
	}
	*dst = v
	return nil
}
