package stale_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
	"github.com/meterkit/meter/stage/stale"
)

// A host goes quiet for five minutes and comes back. The publisher gives
// the stage each batch's origin and calls Tick now and then; here a clock
// the example sets stands for the time of arrival.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := stale.New(stale.Config{After: meter.Duration(5 * time.Minute)}, stale.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := stage.WithOrigin(context.Background(), stage.Origin{Tenant: "acme", Agent: "web1", Seq: 1})
	in := []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12, Time: now, Host: "web1"}}
	show := func(out []meter.Measurement) {
		for _, m := range out {
			if m.Name == meter.StateChange {
				fmt.Println(m.Time.Format("15:04"), m.Name, m.Value, m.Host, m.Labels)
			}
		}
	}
	var out []meter.Measurement
	for minute := range 12 {
		now = now.Add(time.Minute)
		if minute < 2 || minute >= 9 { // silent from 00:03 to 00:09
			out, _ = s.Process(ctx, in, out[:0])
			show(out)
		}
		out, _ = s.Tick(context.Background(), now, out[:0])
		show(out)
	}
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// 00:07 meterkit.state.change 4 web1 [{meter meterkit.agent} {from ok} {to stale} {tenant acme}]
	// 00:10 meterkit.state.change 0 web1 [{meter meterkit.agent} {from stale} {to ok} {tenant acme}]
	// {In:5 Out:7 Filtered:0 Dropped:0 Missing:0 Resets:0 Late:0 Series:1}
}
