package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/processors/funnel"
)

// matchFields are the event fields a funnel's where and hold_constant may
// name, besides properties.<name>.
var matchFields = []string{"page", "item_id", "session_id", "currency"}

// validateFunnels rejects a funnel that would silently count nothing: an
// unknown event name or field, a repeated step name, an empty list.
func (c Config) validateFunnels(ps *problems) {
	if len(c.Funnels) == 0 {
		ps.add("funnels", "no funnel is defined; define at least one, or leave the key out to keep the default %q funnel", funnel.DefaultDefinitions()[0].Name)
		return
	}
	events := c.DeclaredEventNames()
	names := map[string]bool{}
	for i, d := range c.Funnels {
		key := fmt.Sprintf("funnels[%d]", i)
		if d.Name != "" {
			key = "funnels." + d.Name
		}
		if names[d.Name] && d.Name != "" {
			ps.add(key, "two funnels are named %q", d.Name)
		}
		names[d.Name] = true
		if err := d.Validate(); err != nil {
			ps.addErr(key, err)
			continue
		}
		stepNames := map[string]bool{}
		check := func(kind string, steps []funnel.Step) {
			for _, s := range steps {
				skey := key + "." + kind + "." + s.Name
				if stepNames[s.Name] {
					ps.add(skey, "step name %q is used twice in funnel %q", s.Name, d.Name)
				}
				stepNames[s.Name] = true
				for _, ev := range s.Events {
					if !slices.Contains(events, ev) {
						ps.add(skey+".events", "unknown event type %q%s; known: %s", ev, suggest(ev, events), strings.Join(events, ", "))
					}
				}
				for field := range s.Where {
					if msg := checkField(field); msg != "" {
						ps.add(skey+".where", "%s", msg)
					}
				}
			}
		}
		check("steps", d.Steps)
		check("exclusions", d.Exclusions)
		if d.HoldConstant != "" {
			if msg := checkField(d.HoldConstant); msg != "" {
				ps.add(key+".hold_constant", "%s", msg)
			}
		}
	}
}

// checkField returns why field cannot be matched on, or "".
func checkField(field string) string {
	if slices.Contains(matchFields, field) {
		return ""
	}
	if name, ok := strings.CutPrefix(field, "properties."); ok && name != "" {
		return ""
	}
	return fmt.Sprintf("unknown field %q%s; accepted: %s, or properties.<name>", field, suggest(field, matchFields), strings.Join(matchFields, ", "))
}

// validateTopics checks the topic names the pipeline needs.
func validateTopics(t pipeline.Topics, ps *problems) {
	for key, name := range map[string]string{"topics.clickstream": t.Clickstream, "topics.chat": t.Chat, "topics.alerts": t.Alerts, "topics.deadletter": t.DeadLetter} {
		if name == "" {
			ps.add(key, "a topic name is required")
		}
	}
	if t.Clickstream != "" && t.Clickstream == t.Chat {
		ps.add("topics", "clickstream and chat must be different topics")
	}
}
