package notification_test

import (
	"fmt"
	"os"

	"github.com/meterkit/meter/driver/notification"
)

// Measure turns a notification into measurements with the shipped
// definitions; here Cinder's hourly volume.exists.
func ExampleDefinitions_Measure() {
	defs, err := notification.ParseDefinitions(notification.DefaultDefinitions())
	if err != nil {
		panic(err)
	}
	body, err := os.ReadFile("testdata/cinder-volume.exists.json")
	if err != nil {
		panic(err)
	}
	n, err := notification.Decode(body) // the oslo.messaging v2 envelope
	if err != nil {
		panic(err)
	}
	ms, matched, err := defs.Measure(n, nil)
	fmt.Println(matched, err)
	for _, m := range ms {
		id, _ := m.Label(notification.LabelMessageID)
		fmt.Println(m.Name, m.Value, m.Unit, m.ResourceID, m.Time.Format("2006-01-02T15:04:05.000000Z07:00"), id)
	}
	// Output:
	// 1 <nil>
	// volume.size 40 GB e2d4f6a8-1b3c-4d5e-8f7a-9b0c1d2e3f4a 2026-11-30T10:00:05.118022Z 0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a
}
