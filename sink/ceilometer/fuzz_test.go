package ceilometer

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// FuzzDecodeEnvelope: no input makes DecodeEnvelope panic, and what the
// sink encodes always decodes.
func FuzzDecodeEnvelope(f *testing.F) {
	body, err := encodeNotification("id", "p", time.Unix(0, 0), []Sample{{CounterName: "x", CounterVolume: "1.0", MessageID: "m"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"{\"payload\":{\"samples\":[{}]}}"}`))
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"nope"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeEnvelope(b)
	})
}

// FuzzPyFloat: the text always reads back as the same float.
func FuzzPyFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1.5, 1e16, 1e-5, 123456789012345.6, math.MaxFloat64, 5e-324} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		s := pyFloat(v)
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != v || math.Signbit(back) != math.Signbit(v) {
			t.Fatalf("pyFloat(%v) = %q reads back as %v, %v", v, s, back, err)
		}
	})
}
