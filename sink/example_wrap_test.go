package sink_test

import (
	"context"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/sink"
)

// receiptStore stands in for a sink whose store keeps receipts, such as
// sink/riemann with WithReceipts.
type receiptStore struct {
	sink.Recorder
	held map[sink.BatchID]int
}

func (s *receiptStore) WriteFrom(ctx context.Context, id sink.BatchID, from int, batch []meter.Measurement) error {
	if err := s.Write(ctx, batch); err != nil {
		return err
	}
	s.held[id] = from + len(batch)
	return nil
}

func (s *receiptStore) Stored(_ context.Context, id sink.BatchID) (int, error) {
	return s.held[id], nil
}

// A logging wrapper made with Wrap keeps the named write and the receipts
// of the sink it wraps, so the publisher still writes a batch in doubt once;
// and every batch, named or not, goes through it.
func ExampleWrap() {
	store := &receiptStore{held: map[sink.BatchID]int{}}

	logged := sink.Wrap(store, func(ctx context.Context, batch []meter.Measurement, next sink.WriteFunc) error {
		err := next(ctx, batch)
		fmt.Printf("wrote %d measurement(s): err=%v\n", len(batch), err)
		return err
	})

	_, named := logged.(sink.NamedWriter)
	_, receipts := logged.(sink.ReceiptKeeper)
	fmt.Println("named writes:", named, "receipts:", receipts)

	// What the publisher does with a batch of 3 whose first attempt took 2.
	ctx := context.Background()
	id := sink.BatchID{Tenant: "acme", Agent: "web-1", Seq: 42}
	batch := []meter.Measurement{
		{Name: "cpu", Kind: meter.Gauge, Value: 0.5, Time: time.Unix(1700000000, 0)},
		{Name: "cpu", Kind: meter.Gauge, Value: 0.6, Time: time.Unix(1700000010, 0)},
		{Name: "cpu", Kind: meter.Gauge, Value: 0.7, Time: time.Unix(1700000020, 0)},
	}
	_ = logged.(sink.NamedWriter).WriteFrom(ctx, id, 0, batch[:2])
	held, _ := logged.(sink.ReceiptKeeper).Stored(ctx, id)
	fmt.Println("the store holds", held, "of", len(batch))
	_ = logged.(sink.NamedWriter).WriteFrom(ctx, id, held, batch[held:])
	fmt.Println("in the store:", store.Len())
	// Output:
	// named writes: true receipts: true
	// wrote 2 measurement(s): err=<nil>
	// the store holds 2 of 3
	// wrote 1 measurement(s): err=<nil>
	// in the store: 3
}
