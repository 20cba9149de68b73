package stage_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/stage"
)

// onlyHost keeps the measurements of one host: a whole stage.
type onlyHost struct{ host string }

func (s onlyHost) Process(ctx context.Context, in, out []meter.Measurement) ([]meter.Measurement, error) {
	for _, m := range in {
		if m.Host == s.host {
			out = append(out, m)
		}
	}
	return out, nil
}

// A stage is one method. Register it to name it in configuration files
// (here in a registry of its own; a stage package registers in init with
// stage.Register), and check it with stagetest.Run in its tests.
func Example() {
	reg := stage.NewRegistry()
	reg.Register("onlyhost", func(cfg meter.Config) (stage.Stage, error) {
		c := struct {
			Host string `json:"host"`
		}{}
		if err := cfg.Decode(&c); err != nil {
			return nil, fmt.Errorf("onlyhost: %w", err)
		}
		return onlyHost{c.Host}, nil
	})

	s, err := reg.Open("onlyhost", meter.ConfigFromJSON([]byte(`{"host": "node1"}`)))
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := []meter.Measurement{
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12, Time: at, Host: "node1"},
		{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 97, Time: at, Host: "node2"},
	}
	out, err := s.Process(context.Background(), batch, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range out {
		fmt.Println(m.Host, m.Name, m.Value)
	}
	_, err = reg.Open("onlyhsot", meter.Config{})
	fmt.Println(err)
	// Output:
	// node1 cpu.util 12
	// stage: unknown stage "onlyhsot" (forgotten import?); registered: onlyhost
}
