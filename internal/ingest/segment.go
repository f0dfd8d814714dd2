package ingest

import (
	"encoding/json"
	"strings"

	"github.com/cxstream/cxstream/schemas"
)

// Names the Segment calls without an event name get.
const (
	SegmentPageName     = schemas.ClickPageView
	SegmentScreenName   = "screen_view"
	SegmentIdentifyName = "identify"
)

// SegmentIDs are the ids of a Segment call, for identity linking.
type SegmentIDs struct {
	UserID, AnonymousID string
}

// segmentIDs reads userId and anonymousId (strings or numbers).
func segmentIDs(rec JSONRecord) SegmentIDs {
	u, _ := toString(rec.Get("userId"))
	a, _ := toString(rec.Get("anonymousId"))
	return SegmentIDs{UserID: strings.TrimSpace(u), AnonymousID: strings.TrimSpace(a)}
}

// fromSegment converts one Segment Spec call (track, page, screen,
// identify) into cxstream's clickstream shape: messageId -> event_id
// (a hash of the bytes when absent), userId else anonymousId -> user_id,
// event -> type, timestamp (else originalTimestamp) -> event_time,
// properties' scalar values -> properties, the e-commerce spec's
// revenue (else total) and currency -> amount and currency.
func fromSegment(rec JSONRecord, identity []byte, defaultCurrency string) (map[string]any, error) {
	out := map[string]any{"schema": schemas.ClickstreamV2}
	callType, _ := rec.Get("type").(string)
	props, _ := rec.Get("properties").(map[string]any)
	switch callType {
	case "track", "":
		name, ok := rec.Get("event").(string)
		if !ok || strings.TrimSpace(name) == "" {
			if callType == "" {
				return nil, &FieldError{Field: "type", Msg: "missing: want track, page, screen or identify"}
			}
			return nil, &FieldError{Field: "event", Msg: "missing or not a string"}
		}
		out["type"] = strings.TrimSpace(name)
	case "page":
		out["type"] = SegmentPageName
		for _, path := range []string{"properties.path", "context.page.path", "properties.url", "context.page.url", "name"} {
			if s, ok := rec.Get(path).(string); ok && s != "" {
				out["page"] = s
				break
			}
		}
	case "screen":
		out["type"] = SegmentScreenName
		if s, ok := rec.Get("name").(string); ok && s != "" {
			out["page"] = s
		}
	case "identify":
		out["type"] = SegmentIdentifyName
		props = nil // traits are personal data (e-mail, name...): not kept
	default:
		return nil, &FieldError{Field: "type", Msg: "want track, page, screen or identify"}
	}
	if id, ok := toString(rec.Get("messageId")); ok && id != "" {
		out["event_id"] = id
	} else {
		out["event_id"] = HashID(identity)
	}
	ids := segmentIDs(rec)
	switch {
	case ids.UserID != "":
		out["user_id"] = ids.UserID
	case ids.AnonymousID != "":
		out["user_id"] = ids.AnonymousID
	default:
		return nil, &FieldError{Field: "userId", Msg: "missing, and no anonymousId"}
	}
	var at any
	for _, f := range []string{"timestamp", "originalTimestamp"} {
		if at = rec.Get(f); at != nil {
			ms, err := parseTime(at, "rfc3339")
			if err != nil {
				return nil, &FieldError{Field: f, Msg: err.Error()}
			}
			out["event_time"] = ms
			break
		}
	}
	if at == nil {
		return nil, &FieldError{Field: "timestamp", Msg: "missing, and no originalTimestamp"}
	}
	if len(props) > 0 {
		kept := map[string]any{}
		for k, v := range props {
			switch x := v.(type) {
			case string, bool:
				kept[k] = x
			case json.Number:
				f, _ := x.Float64()
				kept[k] = f
			} // nested objects (products) and nulls are left out
			if len(kept) == 64 {
				break
			}
		}
		if len(kept) > 0 {
			out["properties"] = kept
		}
		for _, f := range []string{"product_id", "sku"} {
			if s, ok := toString(props[f]); ok && s != "" {
				out["item_id"] = s
				break
			}
		}
		if s, ok := props["session_id"].(string); ok {
			out["session_id"] = s
		}
		for _, f := range []string{"revenue", "total"} {
			if v, ok := props[f]; ok && v != nil {
				amount, ok := toNumber(v)
				if !ok {
					return nil, &FieldError{Field: "properties." + f, Msg: "not a number"}
				}
				out["amount"] = amount
				break
			}
		}
		if c, ok := props["currency"].(string); ok && c != "" {
			out["currency"] = strings.ToUpper(c)
		}
	}
	if _, ok := out["amount"]; ok && out["currency"] == nil && defaultCurrency != "" {
		out["currency"] = defaultCurrency
	}
	return out, nil
}
