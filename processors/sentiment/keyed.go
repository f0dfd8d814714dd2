package sentiment

import (
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// Keyed is the sentiment processor on the processor contract: it scores
// chat messages and raises negative-chat alerts, weighing what the
// clickstream side knows of the customer.
type Keyed struct {
	p *Processor
	// currency of the customer's spend in alert reasons ("" leaves it out).
	currency string
}

// NewKeyed returns the sentiment processor on the processor contract.
func NewKeyed(p *Processor, currency string) *Keyed { return &Keyed{p: p, currency: currency} }

var _ processors.Processor = (*Keyed)(nil)

// Name implements processors.Processor.
func (k *Keyed) Name() string { return "sentiment" }

// Stream implements processors.Processor.
func (k *Keyed) Stream() processors.Stream { return processors.Chats }

// NewState implements processors.Processor.
func (k *Keyed) NewState() any { return &State{} }

// Apply implements processors.Processor.
func (k *Keyed) Apply(u *processors.User, ev processors.Event) processors.Effects {
	st := u.State("sentiment").(*State)
	var cust Customer
	if ev.Chat.Sender == schemas.SenderCustomer {
		// Only a customer's message can raise an alert, which weighs the
		// customer; the facts are not worth gathering otherwise.
		f := u.Facts()
		cust = Customer{Purchases: f.Purchases, Spend: f.Spend, Currency: k.currency, FunnelStage: f.FunnelStage, Segment: f.Segment}
	}
	if a := k.p.Apply(st, *ev.Chat, cust).Alert; a != nil {
		return processors.Effects{Alerts: []*schemas.Alert{a}}
	}
	return processors.Effects{}
}

// Describe implements processors.Processor.
func (k *Keyed) Describe(u *processors.User, f *processors.Facts) {
	st := u.State("sentiment").(*State)
	f.NegativeAt, f.ContactAt, f.Sentiment = st.NegativeAt, st.ContactAt, st.User.Mean
}
